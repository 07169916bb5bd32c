// The dashboard page GET /dashboard, shipped as a string (tsc copies no static files to dist/). Static markup
// only: semantic tables with captions and column headers, filled by /dashboard/app.js; no inline script or style
// (the Content-Security-Policy forbids both). Without JavaScript it says where the JSON is.
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tessera fleet</title>
<link rel="icon" href="/dashboard/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/dashboard/style.css">
<script type="module" src="/dashboard/app.js"></script>
</head>
<body>
<a class="skip" href="#main">Skip to the fleet</a>
<header>
  <h1>Tessera fleet <span class="muted">trust domain</span> <span id="trust-domain">…</span></h1>
  <p id="status" role="status" aria-live="polite" aria-atomic="true">Loading the fleet…</p>
  <nav aria-label="Panels">
    <ul>
      <li><a href="#ca">Certificate authority</a></li>
      <li><a href="#timeline">Expiry timeline</a></li>
      <li><a href="#workloads-panel">Workloads</a></li>
      <li><a href="#proxies-panel">Proxies</a></li>
      <li><a href="#denials-panel">Denials</a></li>
      <li><a href="#grants-panel">Break-glass</a></li>
      <li><a href="#bans-panel">Bans</a></li>
      <li><a href="#events-panel">Events</a></li>
    </ul>
  </nav>
  <noscript><p>This page needs JavaScript. The same data is JSON at <a href="/api/fleet">/api/fleet</a>.</p></noscript>
</header>
<main id="main">
<section id="ca" data-panels="ca" aria-labelledby="ca-h">
  <h2 id="ca-h">Certificate authority</h2>
  <p class="unavailable" hidden></p>
  <div id="rotation"></div>
  <table id="authorities">
    <caption>Authorities: prepared (in the bundle, not signing), active (signing), retired (in the bundle until its SVIDs expire)</caption>
    <thead><tr><th scope="col">Authority</th><th scope="col">State</th><th scope="col">Created</th><th scope="col">Root expires</th><th scope="col">Intermediates</th><th scope="col">Live SVIDs</th></tr></thead>
    <tbody></tbody>
  </table>
</section>
<section id="timeline" aria-labelledby="timeline-h">
  <h2 id="timeline-h">Expiry timeline</h2>
  <figure>
    <svg id="timeline-svg" viewBox="0 0 1000 60" height="60" role="img" aria-labelledby="timeline-title timeline-desc" focusable="false">
      <title id="timeline-title">Expiry timeline: roots, intermediates, break-glass grants and workload SVIDs, from now to each expiry (logarithmic time axis)</title>
      <desc id="timeline-desc">Loading.</desc>
      <g class="plot"></g>
    </svg>
    <figcaption>Each bar runs from now to an expiry; the axis is logarithmic so minutes and a year fit side by side. The same dates are in the tables.</figcaption>
  </figure>
  <p id="timeline-more" class="note" hidden></p>
</section>
<section id="workloads-panel" data-panels="workloads" aria-labelledby="workloads-h">
  <h2 id="workloads-h">Workloads</h2>
  <p class="unavailable" hidden></p>
  <table id="workloads">
    <caption>Live SVIDs, the newest of each renewal chain (one per running workload)</caption>
    <thead><tr><th scope="col">SPIFFE ID</th><th scope="col">Serial</th><th scope="col">Expires</th><th scope="col">Issued</th><th scope="col">Attested as</th><th scope="col">Authority</th><th scope="col">Older live SVIDs</th></tr></thead>
    <tbody></tbody>
  </table>
  <p id="workloads-more" class="note" hidden></p>
  <p id="svids-more" class="note" hidden></p>
</section>
<section id="proxies-panel" data-panels="proxies" aria-labelledby="proxies-h">
  <h2 id="proxies-h">Proxies</h2>
  <p class="unavailable" hidden></p>
  <table id="proxies">
    <caption>The SVID each proxy really serves, as it last reported; rows marked ⚠ or ✕ do not serve the latest SVID issued to them</caption>
    <thead><tr><th scope="col">SPIFFE ID</th><th scope="col">Instance</th><th scope="col">Listeners</th><th scope="col">Serving serial</th><th scope="col">Compared with the latest issued</th><th scope="col">Checked</th><th scope="col">Reported to</th></tr></thead>
    <tbody></tbody>
  </table>
  <p id="proxies-more" class="note" hidden></p>
</section>
<section id="denials-panel" data-panels="denials" aria-labelledby="denials-h">
  <h2 id="denials-h">Denials per policy</h2>
  <p class="unavailable" hidden></p>
  <table id="denials">
    <caption>Requests refused by a policy, and requests an audit-mode policy would have refused (they went through), as the proxies counted them since they started</caption>
    <thead><tr><th scope="col">Policy</th><th scope="col">Outcome</th><th scope="col">Count</th><th scope="col">Last</th><th scope="col">Last caller</th><th scope="col">Reported by</th></tr></thead>
    <tbody></tbody>
  </table>
  <p id="denials-more" class="note" hidden></p>
</section>
<section id="grants-panel" data-panels="grants" aria-labelledby="grants-h">
  <h2 id="grants-h">Break-glass grants</h2>
  <p class="unavailable" hidden></p>
  <table id="grants">
    <caption>Active time-bounded allows opened by an operator</caption>
    <thead><tr><th scope="col">Grant</th><th scope="col">To</th><th scope="col">From</th><th scope="col">Reason</th><th scope="col">Opened by</th><th scope="col">Expires</th></tr></thead>
    <tbody></tbody>
  </table>
</section>
<section id="bans-panel" data-panels="bans" aria-labelledby="bans-h">
  <h2 id="bans-h">Bans</h2>
  <p class="unavailable" hidden></p>
  <table id="bans">
    <caption>Banned SPIFFE IDs and SVID serials still enforced</caption>
    <thead><tr><th scope="col">Banned</th><th scope="col">Kind</th><th scope="col">Reason</th><th scope="col">By</th><th scope="col">Since</th><th scope="col">Until</th></tr></thead>
    <tbody></tbody>
  </table>
</section>
<section id="events-panel" data-panels="events" aria-labelledby="events-h">
  <h2 id="events-h">Recent events</h2>
  <p class="unavailable" hidden></p>
  <table id="events">
    <caption>The latest refused SVIDs, CA changes, break-glass grants and bans from the audit log, newest first</caption>
    <thead><tr><th scope="col">Time</th><th scope="col">Event</th><th scope="col">Result</th><th scope="col">About</th><th scope="col">Caller</th><th scope="col">Detail</th></tr></thead>
    <tbody></tbody>
  </table>
</section>
</main>
<footer><p class="muted">Read-only. Times are the control plane's clock, in UTC. JSON: <a href="/api/fleet">/api/fleet</a>.</p></footer>
</body>
</html>
`;

/** The tab icon (a tessera: one tile split in two), served so the browser's favicon request finds something. */
export const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect x="1" y="1" width="14" height="14" rx="2" fill="#1d3f8f"/><path d="M8 1v14" stroke="#fff" stroke-width="1.5"/></svg>
`;
