// The dashboard's browser module /dashboard/time-axis.js, shipped as a string (tsc copies no static files to dist/):
// time formatting and the SVG expiry timeline. Everything that expires — SVIDs, intermediates, roots, break-glass
// grants — is a bar from "now" to its expiry on one logarithmic axis, so minutes and a year fit side by side.
// Plain ES module, no imports; the pure functions are unit-tested by importing this text as a data: URL. The
// browser modules are template literals: they hold no backquote, dollar-brace or backslash.
export const TIME_AXIS_JS = `// Tessera dashboard: time formatting and the expiry timeline (SVG).
const SVG_NS = 'http://www.w3.org/2000/svg';
const MINUTE = 60000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** "12:00:01Z" today (by the server's clock), "2026-01-31 12:00Z" otherwise. */
export function clockText(ms, nowMs) {
  const iso = new Date(ms).toISOString();
  if (iso.slice(0, 10) === new Date(nowMs).toISOString().slice(0, 10)) return iso.slice(11, 19) + 'Z';
  return iso.slice(0, 10) + ' ' + iso.slice(11, 16) + 'Z';
}

/** "in 54 s", "3 min ago", "in 2 h", "in 364 d". */
export function relative(ms, nowMs) {
  const d = ms - nowMs;
  const a = Math.abs(d);
  let text;
  if (a < 1000) return 'now';
  if (a < 100 * 1000) text = Math.round(a / 1000) + ' s';
  else if (a < 100 * MINUTE) text = Math.round(a / MINUTE) + ' min';
  else if (a < 48 * HOUR) text = Math.round(a / HOUR) + ' h';
  else text = Math.round(a / DAY) + ' d';
  return d > 0 ? 'in ' + text : text + ' ago';
}

/** x for a time: "now" at x0, then log(1 + dt / 1 min) up to the latest end at x1 (ten minutes at least). */
export function makeScale(nowMs, endMs, x0, x1) {
  const span = Math.max(endMs - nowMs, 10 * MINUTE);
  const k = (x1 - x0) / Math.log1p(span / MINUTE);
  return function (t) {
    const dt = Math.max(0, Math.min(t, nowMs + span) - nowMs);
    return x0 + k * Math.log1p(dt / MINUTE);
  };
}

const TICKS = [
  [MINUTE, '1 min'],
  [10 * MINUTE, '10 min'],
  [HOUR, '1 h'],
  [6 * HOUR, '6 h'],
  [DAY, '1 d'],
  [7 * DAY, '7 d'],
  [30 * DAY, '30 d'],
  [365 * DAY, '1 y'],
];

/** The axis marks that fit before the latest end: [{ ms, label }]. */
export function ticks(nowMs, endMs) {
  const span = Math.max(endMs - nowMs, 10 * MINUTE);
  return TICKS.filter(function (t) { return t[0] <= span; }).map(function (t) { return { ms: nowMs + t[0], label: t[1] }; });
}

const KIND_NAME = { root: 'Root', intermediate: 'Intermediate', grant: 'Break-glass', svid: 'SVID' };
const LABEL_X = 4;
const PLOT_X0 = 330;
const PLOT_X1 = 880;
const ROW_H = 22;
const TOP = 34;

function node(doc, tag, attrs, text) {
  const n = doc.createElementNS(SVG_NS, tag);
  for (const k of Object.keys(attrs)) n.setAttribute(k, String(attrs[k]));
  if (text !== undefined) n.textContent = text;
  return n;
}

function shorten(text, max) {
  return text.length > max ? text.slice(0, max - 1) + '…' : text;
}

/** Draws items ({ kind, label, endMs, note }) into the svg, replacing what was there; returns a one-line summary. */
export function drawTimeline(svg, items, nowMs) {
  const doc = svg.ownerDocument;
  const plot = svg.querySelector('g.plot');
  while (plot.firstChild) plot.removeChild(plot.firstChild);
  const live = items.filter(function (i) { return i.endMs > nowMs; });
  const height = TOP + Math.max(1, live.length) * ROW_H + 8;
  svg.setAttribute('viewBox', '0 0 1000 ' + height);
  svg.setAttribute('height', String(height));
  const end = live.reduce(function (m, i) { return Math.max(m, i.endMs); }, nowMs);
  const x = makeScale(nowMs, end, PLOT_X0, PLOT_X1);
  for (const t of ticks(nowMs, end)) {
    plot.appendChild(node(doc, 'line', { x1: x(t.ms), x2: x(t.ms), y1: TOP - 6, y2: height - 4, class: 'tick' }));
    plot.appendChild(node(doc, 'text', { x: x(t.ms), y: TOP - 10, class: 'tick-label', 'text-anchor': 'middle' }, t.label));
  }
  plot.appendChild(node(doc, 'line', { x1: PLOT_X0, x2: PLOT_X0, y1: TOP - 24, y2: height - 4, class: 'now' }));
  plot.appendChild(node(doc, 'text', { x: PLOT_X0, y: 12, class: 'now-label', 'text-anchor': 'middle' }, 'now'));
  if (live.length === 0) {
    plot.appendChild(node(doc, 'text', { x: LABEL_X, y: TOP + 15, class: 'row-label' }, 'Nothing live to show.'));
    return 'Nothing live to show.';
  }
  live.forEach(function (item, n) {
    const y = TOP + n * ROW_H;
    const name = KIND_NAME[item.kind] + ' ' + item.label + (item.note ? ' (' + item.note + ')' : '');
    const when = relative(item.endMs, nowMs);
    const row = node(doc, 'g', { class: 'row kind-' + item.kind + (item.note ? ' note-' + item.note.replace(/[^a-z]+/g, '-') : '') });
    row.appendChild(node(doc, 'title', {}, name + ': expires ' + new Date(item.endMs).toISOString() + ' (' + when + ')'));
    row.appendChild(node(doc, 'text', { x: LABEL_X, y: y + 15, class: 'row-label' }, shorten(name, 52)));
    const xe = x(item.endMs);
    row.appendChild(node(doc, 'rect', { x: PLOT_X0, y: y + 4, width: Math.max(2, xe - PLOT_X0), height: ROW_H - 8, class: 'bar' }));
    row.appendChild(node(doc, 'path', { d: 'M' + xe + ' ' + (y + 2) + 'v' + (ROW_H - 4), class: 'end' }));
    row.appendChild(node(doc, 'text', { x: 995, y: y + 15, class: 'row-when', 'text-anchor': 'end' }, when));
    plot.appendChild(row);
  });
  const first = live.reduce(function (a, b) { return a.endMs <= b.endMs ? a : b; });
  return live.length + ' items; the first to expire is ' + KIND_NAME[first.kind] + ' ' + first.label + ', ' + relative(first.endMs, nowMs) + '.';
}
`;
