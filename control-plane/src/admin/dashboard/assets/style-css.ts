// The dashboard's stylesheet /dashboard/style.css, shipped as a string (tsc copies no static files to dist/).
// Colours are chosen for WCAG AA: text at least 4.5:1 on its background, timeline bars at least 3:1 on white;
// every state also has a word and a symbol, so nothing depends on colour alone.
export const STYLE_CSS = `:root {
  --fg: #1b1f24;        /* 16:1 on white */
  --muted: #4a5361;     /* 7.8:1 on white, 6.6:1 on --bad-bg */
  --line: #c9ced6;
  --bg-alt: #f4f6f8;
  --link: #1d4ed8;      /* 6.7:1 on white */
  --ok-fg: #0b5d1e;  --ok-bg: #e6f4ea;     /* 7.1:1 */
  --info-fg: #1e3a8a; --info-bg: #e8eefc;  /* 8.9:1 */
  --warn-fg: #7a3e00; --warn-bg: #fff1dc;  /* 7.5:1 */
  --bad-fg: #8a1111;  --bad-bg: #fde8e8;   /* 8.3:1 */
}
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: #fff; }
a { color: var(--link); }
a:focus-visible, :focus-visible { outline: 3px solid #1d4ed8; outline-offset: 2px; }
.skip { position: absolute; left: -10000px; top: 0; background: #fff; padding: .5em; }
.skip:focus { left: .5em; }
header, main, footer { padding: 0 1.25rem; max-width: 1400px; margin: 0 auto; }
header { border-bottom: 1px solid var(--line); padding-bottom: .5rem; }
h1 { font-size: 1.4rem; margin: .8rem 0 .2rem; }
h2 { font-size: 1.15rem; margin: 1.6rem 0 .4rem; }
.muted { color: var(--muted); font-weight: normal; font-size: .85em; }
#status { margin: .2rem 0 .4rem; color: var(--muted); }
nav ul { list-style: none; padding: 0; margin: 0; display: flex; flex-wrap: wrap; gap: .3rem 1rem; }
table { border-collapse: collapse; width: 100%; margin: .3rem 0 .6rem; font-size: .92rem; }
caption { text-align: left; color: var(--muted); padding: .2rem 0 .4rem; caption-side: top; }
th, td { text-align: left; vertical-align: top; padding: .35rem .5rem; border-bottom: 1px solid var(--line); }
thead th { background: var(--bg-alt); border-bottom: 2px solid var(--line); white-space: nowrap; }
tbody th { font-weight: 600; word-break: break-all; }
td.empty { color: var(--muted); font-style: italic; }
code { font: .88em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
time { white-space: nowrap; }
ul.plain { list-style: none; margin: 0; padding: 0; }
.badge { display: inline-block; padding: 0 .45em; border-radius: .3em; border: 1px solid currentColor; white-space: nowrap; font-size: .9em; }
.badge.ok { color: var(--ok-fg); background: var(--ok-bg); }
.badge.info { color: var(--info-fg); background: var(--info-bg); }
.badge.warn { color: var(--warn-fg); background: var(--warn-bg); }
.badge.bad { color: var(--bad-fg); background: var(--bad-bg); font-weight: 600; }
tr.mismatch > * { background: var(--bad-bg); }
tr.mismatch > th { border-left: 4px solid var(--bad-fg); }
.unavailable { color: var(--bad-fg); background: var(--bad-bg); padding: .4rem .6rem; border-left: 4px solid var(--bad-fg); }
.note { color: var(--muted); }
ol.steps { display: flex; flex-wrap: wrap; gap: .4rem; list-style: none; padding: 0; margin: .3rem 0; counter-reset: step; }
ol.steps li { counter-increment: step; padding: .2rem .7rem; border: 1px solid var(--line); border-radius: 1em; color: var(--muted); }
ol.steps li::before { content: counter(step) ". "; }
ol.steps li.current { color: var(--info-fg); background: var(--info-bg); border: 2px solid var(--info-fg); font-weight: 600; }
figure { margin: .3rem 0; }
figcaption { color: var(--muted); font-size: .9rem; }
#timeline-svg { width: 100%; height: auto; display: block; font: 12px system-ui, sans-serif; }
#timeline-svg .tick { stroke: var(--line); stroke-width: 1; }
#timeline-svg .tick-label, #timeline-svg .row-when { fill: var(--muted); }
#timeline-svg .now { stroke: var(--fg); stroke-width: 2; }
#timeline-svg .now-label { fill: var(--fg); font-weight: 600; }
#timeline-svg .row-label { fill: var(--fg); }
#timeline-svg .end { stroke: var(--fg); stroke-width: 2; }
#timeline-svg .kind-root .bar { fill: #3b5bdb; }          /* 5.7:1 on white */
#timeline-svg .kind-intermediate .bar { fill: #0b7285; }  /* 5.6:1 */
#timeline-svg .kind-grant .bar { fill: #c2255c; }         /* 5.3:1 */
#timeline-svg .kind-svid .bar { fill: #2b8a3e; }          /* 4.3:1 */
#timeline-svg .note-prepared .bar, #timeline-svg .note-retired .bar { fill-opacity: .45; stroke: var(--fg); stroke-dasharray: 4 3; }
#timeline-svg .note-not-served-yet .bar { stroke: var(--bad-fg); stroke-width: 2; }
@media (prefers-reduced-motion: reduce) { * { transition: none !important; animation: none !important; } }
`;
