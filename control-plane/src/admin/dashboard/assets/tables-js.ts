// The dashboard's browser module /dashboard/tables.js, shipped as a string (tsc copies no static files to dist/):
// fills the page's tables from the fleet JSON. Every value goes in as text (textContent), never as markup: SPIFFE
// IDs, reasons and callers come from operators and peers. States are words and symbols, not colour alone.
export const TABLES_JS = `// Tessera dashboard: the tables, filled from /api/fleet.
import { clockText, relative } from '/dashboard/time-axis.js';

const STEP_NAMES = { prepare: 'Prepare', propagate: 'Propagate', activate: 'Activate', retire: 'Retire' };
const SERVED = {
  current: ['ok', '✓ current'],
  superseded: ['bad', '⚠ stale: a newer SVID was issued before this check'],
  'renewed-since-check': ['info', '↻ renewed after this check'],
  expired: ['bad', '✕ expired'],
  unknown: ['warn', '? not in this inventory'],
  'check-failed': ['bad', '✕ the proxy could not read what this listener serves'],
  unchecked: ['info', 'inventory unavailable'],
};
const STATE = { active: ['ok', '● active'], prepared: ['info', '◐ prepared'], retired: ['warn', '○ retired'] };

function el(tag, attrs, children) {
  const n = document.createElement(tag);
  for (const k of Object.keys(attrs || {})) n.setAttribute(k, String(attrs[k]));
  for (const c of children || []) n.append(c === null || c === undefined ? '' : c);
  return n;
}

/** A time as a <time>: absolute (server clock) and relative; the relative part is refreshed by refreshTimes(). */
function when(ms, nowMs) {
  if (ms === null || ms === undefined) return '—';
  return el('time', { datetime: new Date(ms).toISOString(), 'data-ms': ms }, [clockText(ms, nowMs) + ' (' + relative(ms, nowMs) + ')']);
}

function serial(s) {
  return el('code', { title: s }, [s.length > 16 ? s.slice(0, 16) + '…' : s]);
}

function badge(kind, text) {
  return el('span', { class: 'badge ' + kind }, [text]);
}

function fill(id, rows, columns, emptyText) {
  const body = document.querySelector('#' + id + ' tbody');
  body.replaceChildren();
  if (rows.length === 0) {
    body.append(el('tr', {}, [el('td', { colspan: columns, class: 'empty' }, [emptyText])]));
    return;
  }
  for (const cells of rows) {
    const attrs = cells.rowClass ? { class: cells.rowClass } : {};
    body.append(el('tr', attrs, cells.map(function (c, n) { return n === 0 ? el('th', { scope: 'row' }, [c]) : el('td', {}, [c]); })));
  }
}

function withClass(cells, rowClass) {
  cells.rowClass = rowClass;
  return cells;
}

/** The proxies' special policy names: '' (no policy selected the workload: its default action) and '*' (folded rows). */
function policyName(p) {
  if (p === '') return '(no policy: default action)';
  if (p === '*') return '(other policies, folded)';
  return p;
}

function attested(a) {
  return a.indexOf('x509svid:') === 0 ? 'renewal of ' + a.slice(9, 25) + (a.length > 25 ? '…' : '') : a;
}

function renderCa(ca, now) {
  const rotation = document.getElementById('rotation');
  rotation.replaceChildren();
  if (!ca) {
    fill('authorities', [], 6, 'The CA could not be read.');
    return;
  }
  const steps = el('ol', { class: 'steps', 'aria-label': 'Rotation steps' }, []);
  for (const s of ['prepare', 'propagate', 'activate', 'retire']) {
    const current = ca.rotation.current === s;
    steps.append(el('li', current ? { 'aria-current': 'step', class: 'current' } : {}, [current ? '▶ ' + STEP_NAMES[s] + ' (now)' : STEP_NAMES[s]]));
  }
  const next = el('p', { id: 'rotation-next' }, [el('strong', {}, ['Next: ']), ca.rotation.next]);
  if (ca.rotation.command) next.append(' ', el('code', {}, [ca.rotation.command + ' --data-dir D']));
  rotation.append(steps, el('p', { id: 'rotation-summary' }, [ca.rotation.summary]), next);
  fill('authorities', ca.authorities.map(function (a) {
    const st = STATE[a.state];
    const inters = el('ul', { class: 'plain' }, a.intermediates.map(function (i) {
      return el('li', {}, [serial(i.serial), ' expires ', when(i.notAfterMs, now), i.signing ? ' — signing' : '']);
    }));
    return [a.id, badge(st[0], st[1]), when(a.createdAtMs, now), when(a.rootNotAfterMs, now), inters, a.liveSvids === null ? 'unknown' : String(a.liveSvids)];
  }), 6, 'No authority.');
}

function renderProxies(proxies, now) {
  const rows = [];
  for (const p of proxies) {
    for (const s of p.served) {
      const st = SERVED[s.status];
      const status = el('span', {}, [badge(st[0], st[1])]);
      if (s.latestSerial) status.append(' latest ', serial(s.latestSerial), s.latestIssuedAtMs ? el('span', {}, [' issued ', when(s.latestIssuedAtMs, now)]) : '');
      const checked = el('span', {}, [when(p.checkedAtMs, now)]);
      if (p.silent) checked.append(' ', badge('warn', '⚠ silent since'));
      rows.push(withClass([p.spiffeId, p.instance, s.listeners.join(', '), s.serial === '' ? '—' : serial(s.serial), status, checked, p.replica], p.mismatch ? 'mismatch' : ''));
    }
  }
  fill('proxies', rows, 7, 'No proxy has reported yet.');
}

function truncatedNote(id, n, what) {
  const note = document.getElementById(id);
  note.hidden = !n;
  note.textContent = n ? n + ' more ' + what + ' not shown.' : '';
}

/** Renders every panel from one fleet view; now is the server's clock. */
export function renderFleet(view, now) {
  document.getElementById('trust-domain').textContent = view.trustDomain;
  renderCa(view.ca, now);
  fill('workloads', view.workloads.map(function (w) {
    return [w.spiffeId, serial(w.serial), when(w.notAfterMs, now), when(w.issuedAtMs, now), attested(w.attestedAs), w.authorityId, String(w.superseded)];
  }), 7, 'No live SVID.');
  truncatedNote('workloads-more', view.truncated.workloads, 'workloads');
  const svids = document.getElementById('svids-more');
  svids.hidden = !view.truncated.svids;
  svids.textContent = view.truncated.svids ? 'The inventory holds more live SVIDs than the ' + view.truncated.svids + ' read (the soonest to expire): some workloads may be missing.' : '';
  truncatedNote('timeline-more', view.truncated.timeline, 'SVIDs');
  renderProxies(view.proxies, now);
  truncatedNote('proxies-more', view.truncated.proxies, 'proxies (taken in turn from each SPIFFE ID, its mismatches first)');
  fill('denials', view.denials.map(function (d) {
    return [d.unknownFrom === null ? policyName(d.policy) : '(policies not distributed here, from ' + d.unknownFrom + ')', d.outcome === 'audit' ? badge('warn', 'audit: would deny') : badge('bad', '✕ denied'), (d.saturated ? '≥ ' : '') + String(d.count), when(d.lastAtMs, now), d.lastCaller, d.reportedBy.join(', ')];
  }), 6, 'No denial reported.');
  truncatedNote('denials-more', view.truncated.denials, 'denial rows (those of the policies distributed here kept first)');
  fill('grants', view.grants.map(function (g) {
    return [g.id, g.to, g.from.join(', '), g.reason, g.createdBy || '—', when(g.expiresAtMs, now)];
  }), 6, 'No active break-glass grant.');
  fill('bans', view.bans.map(function (b) {
    return [b.value, b.kind === 'serial' ? 'SVID serial' : 'SPIFFE ID', b.reason, b.createdBy, when(b.createdAtMs, now), b.notAfterMs === null ? '—' : when(b.notAfterMs, now)];
  }), 6, 'No ban.');
  fill('events', view.events.map(function (e) {
    return [when(e.atMs, now), e.event, [e.result, e.code].filter(Boolean).join(' ') || '—', e.subject || '—', e.caller || '—', e.detail || '—'];
  }), 6, 'No recent event.');
  for (const section of document.querySelectorAll('section[data-panels]')) {
    const names = section.getAttribute('data-panels').split(' ');
    const problems = view.unavailable.filter(function (u) { return names.indexOf(u.panel) >= 0; });
    const box = section.querySelector('.unavailable');
    box.hidden = problems.length === 0;
    box.textContent = problems.map(function (u) { return '⚠ Unavailable (' + u.panel + '): ' + u.reason; }).join(' ');
  }
}

/** Moves every relative time on the page on, without touching anything else. */
export function refreshTimes(now) {
  for (const t of document.querySelectorAll('time[data-ms]')) {
    const ms = Number(t.getAttribute('data-ms'));
    t.textContent = clockText(ms, now) + ' (' + relative(ms, now) + ')';
  }
}
`;
