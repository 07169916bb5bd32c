// A readiness prober for the hold benches (argv[2] = URL to poll, argv[3] = poll period in ms): one GET in flight
// at a time, the next one a period after the answer; GET /stats on its own port (printed as "ready-probe: port N")
// returns the longest answer time, the longest gap between two answers and the slow polls since the last /stats.
// Runs as its own process, so a busy harness does not delay the polls it measures.
import { createServer, get } from 'node:http';
import { Agent } from 'node:http';

const url = process.argv[2] ?? '';
const periodMs = Number(process.argv[3] ?? 20);
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const fresh = () => ({ polls: 0, fails: 0, maxMs: 0, maxGapMs: 0, slow: [] as [number, number][] });
const state = { window: fresh(), lastAnswerAt: performance.now(), startedAt: performance.now() };

function poll(): void {
  const t0 = performance.now();
  const done = (ok: boolean) => {
    const now = performance.now();
    const w = state.window;
    w.polls++;
    if (!ok) w.fails++;
    w.maxMs = Math.max(w.maxMs, now - t0);
    w.maxGapMs = Math.max(w.maxGapMs, now - state.lastAnswerAt);
    if (now - t0 > 200 && w.slow.length < 50) w.slow.push([Math.round((t0 - state.startedAt) / 100) / 10, Math.round(now - t0)]);
    state.lastAnswerAt = now;
    setTimeout(poll, periodMs);
  };
  const req = get(url, { agent, timeout: 120_000 }, (res) => {
    res.resume();
    res.on('end', () => done(res.statusCode === 200));
  });
  req.on('error', () => done(false));
}

const server = createServer((req, res) => {
  if (req.url !== '/stats') {
    res.writeHead(404).end();
    return;
  }
  const w = state.window;
  state.window = fresh();
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ ...w, maxMs: Math.round(w.maxMs), maxGapMs: Math.round(w.maxGapMs) }));
});
server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`ready-probe: port ${typeof a === 'object' && a ? a.port : 0}\n`);
  poll();
});
