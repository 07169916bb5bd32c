// wrk as the load generator (`tessera bench --load wrk`): the real wrk binary against real local servers, keep-alive
// and a connection per request, its figures read from the report hook's line (counts, statuses apart, wrk's own
// percentiles); output without that line is refused; a refused connection is an error, never a success.
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { findBinary } from '../../../bench/harness/peer-binaries.js';
import { parseWrk, runWrk, writeWrkScript } from '../../../bench/harness/wrk-load.js';

const wrk = findBinary('wrk');
let dir = '';
let script = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-wrk-'));
  script = await writeWrkScript(dir);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
});

async function serve(status: (n: number) => number): Promise<number> {
  let n = 0;
  const server = createServer((_req, res) => {
    res.statusCode = status(++n);
    res.end('ok');
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

describe('parseWrk', () => {
  const line = (o: Record<string, number>) =>
    `Running 1s test @ http://127.0.0.1:1/\n  1 threads and 4 connections\nTESSERA-WRK ${JSON.stringify({ requests: 1000, durationUs: 2_000_000, connect: 0, read: 0, write: 0, status: 0, timeout: 0, minUs: 80, maxUs: 9000, meanUs: 250.5, p50Us: 200, p90Us: 400, p99Us: 1200, p999Us: 5000, ...o })}\n`;

  test('counts, rate over the measured duration, latency in ms', () => {
    const r = parseWrk(line({}));
    expect(r).toMatchObject({ elapsedMs: 2000, responses: 1000, ok2xx: 1000, non2xx: 0, errors: 0, reqPerSec: 500, errorSamples: [] });
    expect(r.latency).toEqual({ count: 1000, meanMs: 0.2505, minMs: 0.08, maxMs: 9, p50Ms: 0.2, p90Ms: 0.4, p99Ms: 1.2, p999Ms: 5 });
  });

  test('statuses of 400 and above are not successes; socket errors and timeouts are errors, each named', () => {
    const r = parseWrk(line({ status: 100, connect: 2, read: 3, write: 1, timeout: 4 }));
    expect(r).toMatchObject({ ok2xx: 900, non2xx: 100, errors: 10, reqPerSec: 450 });
    expect(r.errorSamples).toEqual(['socket errors: connect 2, read 3, write 1', 'timeouts: 4', 'status 400 or above: 100']);
  });

  test('output without the report line is refused, quoting its end', () => {
    expect(() => parseWrk('unable to connect to 127.0.0.1:1 Connection refused\n')).toThrow(/no report line.*Connection refused/);
  });
});

describe.skipIf(!wrk)('runWrk (the real wrk)', () => {
  test('a closed loop over every connection: all answered, percentiles ordered, 503s counted apart', async () => {
    const port = await serve((n) => (n % 10 === 0 ? 503 : 200));
    const r = await runWrk({ wrk: wrk!, script, url: `http://127.0.0.1:${port}/`, connections: 4, durationMs: 1000 });
    expect(r.responses).toBeGreaterThan(100);
    expect(r.non2xx).toBeGreaterThan(0);
    expect(r.ok2xx + r.non2xx).toBe(r.responses);
    expect(Math.abs(r.non2xx * 10 - r.responses)).toBeLessThanOrEqual(10);
    expect(r.errors).toBe(0);
    expect(r.elapsedMs).toBeGreaterThan(900);
    expect(r.latency.p50Ms).toBeLessThanOrEqual(r.latency.p99Ms);
    expect(r.latency.p99Ms).toBeLessThanOrEqual(r.latency.p999Ms);
    expect(r.latency.p999Ms).toBeLessThanOrEqual(r.latency.maxMs);
  });

  test('close: a new connection for every request, each answered', async () => {
    let connections = 0;
    const server = createServer((_req, res) => res.end('ok'));
    server.on('connection', () => connections++);
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const r = await runWrk({ wrk: wrk!, script, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, connections: 2, durationMs: 1000, close: true });
    expect(r.ok2xx).toBeGreaterThan(20);
    expect(r.errors).toBe(0);
    // One per answer, plus wrk's connect probe before it starts and each connection's reconnect after its last answer.
    expect(connections).toBeGreaterThanOrEqual(r.responses);
    expect(connections - r.responses).toBeLessThanOrEqual(1 + 2);
  });

  test('a port nobody listens on: connection errors, no success', async () => {
    const port = await serve(() => 200);
    await new Promise<void>((r) => servers.pop()!.close(() => r()));
    const r = await runWrk({ wrk: wrk!, script, url: `http://127.0.0.1:${port}/`, connections: 2, durationMs: 1000 });
    expect(r.ok2xx).toBe(0);
    expect(r.errors).toBeGreaterThan(0);
    expect(r.errorSamples).toEqual([`unable to connect to 127.0.0.1:${port} Connection refused`]);
  });
});
