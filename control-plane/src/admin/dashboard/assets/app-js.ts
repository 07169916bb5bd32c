// The dashboard's entry module /dashboard/app.js, shipped as a string (tsc copies no static files to dist/): takes
// the fleet view from the Server-Sent Events stream (/api/events), falls back to polling /api/fleet when the stream
// is refused, keeps relative times and the timeline moving, and says in one polite live region what changed.
export const APP_JS = `// Tessera dashboard: live updates.
import { drawTimeline } from '/dashboard/time-axis.js';
import { refreshTimes, renderFleet } from '/dashboard/tables.js';

const POLL_MS = 5000;
const TICK_MS = 5000;
let view = null;
// Server clock minus ours, from the last view: times are shown by the control plane's clock.
let offsetMs = 0;
let updates = 0;
let pollTimer = 0;

function serverNow() {
  return Date.now() + offsetMs;
}

function setStatus(text) {
  const s = document.getElementById('status');
  if (s.textContent !== text) s.textContent = text;
}

function summary(v) {
  const stale = v.proxies.filter(function (p) { return p.mismatch; }).length;
  const parts = [
    v.workloads.length + ' workload SVID' + (v.workloads.length === 1 ? '' : 's'),
    v.proxies.length + ' prox' + (v.proxies.length === 1 ? 'y' : 'ies') + (stale ? ' (' + stale + ' not serving the latest SVID)' : ''),
  ];
  if (v.ca) parts.push('CA ' + (v.ca.rotation.current ? 'rotation step: ' + v.ca.rotation.current : 'steady'));
  if (v.grants.length) parts.push(v.grants.length + ' break-glass grant' + (v.grants.length === 1 ? '' : 's'));
  if (v.unavailable.length) parts.push(v.unavailable.length + ' panel(s) unavailable');
  return parts.join(', ');
}

function draw() {
  if (!view) return;
  const text = drawTimeline(document.getElementById('timeline-svg'), view.timeline, serverNow());
  document.getElementById('timeline-desc').textContent = text;
}

function show(v, how) {
  view = v;
  offsetMs = v.generatedAtMs - Date.now();
  updates++;
  renderFleet(v, serverNow());
  draw();
  document.body.setAttribute('data-updates', String(updates));
  document.body.setAttribute('data-generated', String(v.generatedAtMs));
  setStatus('Updated ' + new Date(v.generatedAtMs).toISOString().slice(11, 19) + 'Z (' + how + '): ' + summary(v) + '.');
}

function poll() {
  fetch('/api/fleet', { cache: 'no-store' })
    .then(function (r) {
      if (!r.ok) throw new Error('HTTP ' + r.status);
      return r.json();
    })
    .then(function (v) { show(v, 'polled every ' + POLL_MS / 1000 + ' s'); })
    .catch(function (e) { setStatus('Could not read the fleet (' + e.message + '); retrying.'); });
}

function startPolling() {
  if (pollTimer) return;
  poll();
  pollTimer = setInterval(poll, POLL_MS);
}

function connect() {
  if (typeof EventSource !== 'function') return startPolling();
  const es = new EventSource('/api/events');
  es.addEventListener('fleet', function (ev) { show(JSON.parse(ev.data), 'live'); });
  es.addEventListener('error', function () {
    // CLOSED: the stream was refused (too many viewers); CONNECTING: the browser retries by itself.
    if (es.readyState === EventSource.CLOSED) startPolling();
    else setStatus('Connection to the control plane lost; reconnecting…');
  });
}

setInterval(function () {
  refreshTimes(serverNow());
  draw();
}, TICK_MS);
connect();
`;
