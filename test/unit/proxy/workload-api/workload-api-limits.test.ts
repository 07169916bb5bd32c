// The Workload API socket's bounds (audit 9c F1): whoever reaches the socket (0666 by design) cannot hold every
// descriptor of the proxy, open streams without end, or keep connections that never make a call; nor keep workloads
// out by holding every connection (audit 61b F2: past the cap newcomers were dropped, silently). Real socket, raw
// clients (net, node:http2) doing what a hostile local process would.
import * as http2 from 'node:http2';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { systemClock } from '../../../../common/clock.js';
import { WORKLOAD_API_LIMITS, WorkloadApiServer } from '../../../../proxy/src/workload-api/workload-api-server.js';
import { realTimers } from '../../../../shared-io/timers.js';
import { makeTempDir } from '../../../helpers/run.js';
import { until } from '../../../helpers/until.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let server: WorkloadApiServer;
const sockets: Socket[] = [];
const sessions: http2.ClientHttp2Session[] = [];
const rejected: string[] = [];

beforeEach(async () => {
  tmp = await makeTempDir();
  server = await WorkloadApiServer.start({
    timers: realTimers, nowMs: systemClock.nowMs,
    socketPath: join(tmp.dir, 'wl.sock'),
    feed: { current: () => undefined, subscribe: () => () => {} },
    limits: { maxConnections: 4, idleMs: 500, firstCallMs: 1_000 },
    onRejected: (reason) => rejected.push(reason),
  });
});

afterEach(async () => {
  rejected.length = 0;
  for (const s of sessions.splice(0)) s.destroy();
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

/** A connection with a call in progress: an SVID stream's HEADERS, its request message not sent yet. */
async function caller(): Promise<{ closed: () => boolean }> {
  let closed = false;
  const session = http2.connect('http://localhost', { createConnection: () => connect(server.socketPath) });
  sessions.push(session);
  session.on('error', () => undefined);
  session.on('close', () => {
    closed = true;
  });
  const req = session.request({ ':method': 'POST', ':path': '/SpiffeWorkloadAPI/FetchX509SVID', 'content-type': 'application/grpc', 'workload.spiffe.io': 'true' }, { endStream: false });
  req.on('error', () => undefined);
  await new Promise((r) => session.once('remoteSettings', r));
  return { closed: () => closed };
}

describe('Workload API socket bounds', () => {
  test('the defaults: a connection cap, a first-call deadline, 16 streams a connection, an idle close, a request size bound', () => {
    expect(WORKLOAD_API_LIMITS).toMatchObject({ maxConnections: 64, firstCallMs: 10_000, maxConcurrentStreams: 16, idleMs: 60_000, maxReceiveBytes: 20_480 });
  });

  test('at the cap the connection that asked nothing for longest makes room, never one with a call in progress; all calls: the newcomer is refused; each counted', async () => {
    const [c1, c2] = [await caller(), await caller()];
    const [s1, s2] = [await silent(), await silent()];
    const n1 = await silent();
    await until('the oldest silent connection closed', () => s1.closed(), 5_000, 20);
    const n2 = await silent();
    await until('the next one closed', () => s2.closed(), 5_000, 20);
    expect([c1.closed(), c2.closed(), n1.closed(), n2.closed()]).toEqual([false, false, false, false]);
    // Two more callers take the silent ones' places; then every connection has a call: a newcomer is closed.
    const [c3, c4] = [await caller(), await caller()];
    await until('the silent ones made room', () => n1.closed() && n2.closed(), 5_000, 20);
    const refused = await silent();
    await until('the newcomer closed', () => refused.closed(), 5_000, 20);
    expect([c1, c2, c3, c4].map((c) => c.closed())).toEqual([false, false, false, false]);
    expect(rejected.filter((r) => r === 'too_many_connections')).toHaveLength(5);
  });

  test('a connection that makes no call is closed at the first-call deadline, counted; one that made a call is not', async () => {
    const c = await silent();
    const made = await caller();
    await until('the silent connection closed', () => c.closed(), 10_000, 50);
    expect(made.closed()).toBe(false);
    expect(rejected).toEqual(['headers_timeout']);
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
