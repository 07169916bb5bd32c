// The Workload API socket's bounds (audit 9c F1): whoever reaches the socket (0666 by design) cannot hold every
// descriptor of the proxy, open streams without end, or keep connections that never make a call. Real socket, raw
// clients (net, node:http2) doing what a hostile local process would.
import * as http2 from 'node:http2';
import { type Socket, connect } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { WORKLOAD_API_LIMITS, WorkloadApiServer } from '../../../../proxy/src/workload-api/workload-api-server.js';
import { makeTempDir } from '../../../helpers/run.js';
import { until } from '../../../helpers/until.js';
import { systemClock } from '../../../../common/clock.js';
import { realTimers } from '../../../../shared-io/timers.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let server: WorkloadApiServer;
const sockets: Socket[] = [];

beforeEach(async () => {
  tmp = await makeTempDir();
  server = await WorkloadApiServer.start({
    timers: realTimers, nowMs: systemClock.nowMs,
    socketPath: join(tmp.dir, 'wl.sock'),
    feed: { current: () => undefined, subscribe: () => () => {} },
    limits: { maxConnections: 4, idleMs: 500 },
  });
});

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await server.close();
  await tmp.cleanup();
});

/** A raw connection that sends nothing; resolves once connected, `closed()` tells whether the server let it go. */
async function silent(): Promise<{ closed: () => boolean }> {
  const s = connect(server.socketPath);
  sockets.push(s);
  let closed = false;
  s.on('error', () => undefined);
  s.on('close', () => {
    closed = true;
  });
  await new Promise<void>((r) => s.once('connect', () => r()));
  return { closed: () => closed };
}

describe('Workload API socket bounds', () => {
  test('the defaults: a connection cap, 16 streams a connection, an idle close, a request size bound', () => {
    expect(WORKLOAD_API_LIMITS).toMatchObject({ maxConnections: 64, maxConcurrentStreams: 16, idleMs: 60_000, maxReceiveBytes: 20_480 });
  });

  test('connections past the cap are closed at accept; those within it stay until idle', async () => {
    const held = await Promise.all([1, 2, 3, 4].map(() => silent()));
    const extra = await silent();
    await until('the connection past the cap closed', () => extra.closed(), 5_000, 20);
    expect(held.map((c) => c.closed())).toEqual([false, false, false, false]);
  });

  test('a connection that never makes a call is closed after the idle time', async () => {
    const c = await silent();
    await until('the silent connection closed', () => c.closed(), 10_000, 50);
  });

  test('a client is told it may open at most 16 streams on a connection', async () => {
    const session = http2.connect('http://localhost', { createConnection: () => connect(server.socketPath) });
    session.on('error', () => undefined);
    try {
      const settings = await new Promise<http2.Settings>((r) => session.once('remoteSettings', r));
      expect(settings.maxConcurrentStreams).toBe(16);
    } finally {
      session.destroy();
    }
  });
});
