// The deadlines of an HTTP/2 server session (H2SessionWatch) on a real loopback h2c session with a fake clock:
// the first request's headers are due headersTimeout after the session starts, an open stream has no session
// deadline, and a session without open streams is due idleTimeout after its last stream closed, PINGs or not.
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, test } from 'vitest';
import type { ProxyLimits } from '../../../../proxy/src/config/proxy-config.js';
import { H2SessionWatch } from '../../../../proxy/src/listeners/h2-server-limits.js';
import { until } from '../../../helpers/until.js';

const LIMITS = { headersTimeoutMs: 500, idleTimeoutMs: 5_000 } as Pick<ProxyLimits, 'headersTimeoutMs' | 'idleTimeoutMs'>;
const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

async function setup(holdMs: number) {
  let now = 1_000_000;
  const expired: string[] = [];
  let watch: H2SessionWatch | undefined;
  const server = http2.createServer();
  server.on('session', (s) => {
    watch = new H2SessionWatch(s, LIMITS, () => now, (code) => expired.push(code));
  });
  server.on('stream', (stream) => {
    setTimeout(() => {
      stream.respond({ ':status': 200 });
      stream.end('ok');
    }, holdMs);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  client.on('error', () => undefined);
  closers.push(() => {
    client.destroy();
    server.close();
  });
  await until('the session', () => watch !== undefined);
  return { client, watch: () => watch!, expired, advance: (ms: number) => (now += ms), now: () => now };
}

function get(client: http2.ClientHttp2Session): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = client.request({ ':path': '/' });
    req.on('error', reject);
    req.resume();
    req.on('end', () => resolve());
    req.end();
  });
}

test('before any request: headers due headersTimeout after the session started', async () => {
  const t = await setup(0);
  expect(t.watch().deadlineMs).toBe(t.now() + 500);
  t.advance(501);
  expect(t.watch().deadlineMs).toBeLessThan(t.now());
  t.watch().expire();
  expect(t.expired).toEqual(['headers_timeout']);
  await until('the session closed', () => t.watch().closed);
});

test('a stream in flight has no session deadline; once it closes, idleTimeout runs from then', async () => {
  const t = await setup(300);
  const done = get(t.client);
  await until('the stream is open', () => t.watch().deadlineMs === Number.POSITIVE_INFINITY, 2_000, 10);
  t.advance(10_000); // far past both timeouts: an open stream is not cut by the session's deadlines
  expect(t.watch().deadlineMs).toBe(Number.POSITIVE_INFINITY);
  await done;
  await until('the stream closed', () => t.watch().deadlineMs !== Number.POSITIVE_INFINITY, 2_000, 10);
  expect(t.watch().deadlineMs).toBe(t.now() + 5_000);
  // PINGs are activity for Node's own timeout, not for this one.
  await new Promise<void>((r) => t.client.ping(() => r()));
  t.advance(5_001);
  expect(t.watch().deadlineMs).toBeLessThan(t.now());
  t.watch().expire();
  expect(t.expired).toEqual(['idle_timeout']);
});
