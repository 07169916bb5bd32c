// Both admin listeners (the control plane's and a proxy's) answer only requests addressed to an IP address or
// localhost and not made by another site's page, on every route: a page that rebinds its own name to the admin
// port (DNS rebinding) sends that name as Host; another site's page sends Sec-Fetch-Site: cross-site or its Origin.
// Raw requests on real sockets, so Host can be missing, doubled or malformed.
import { connect, type Socket } from 'node:net';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ADMIN_MAX_CONNECTIONS, AdminHttp } from '../../../control-plane/src/admin/admin-http.js';
import { type AdminServer, startAdminServer } from '../../../proxy/src/admin/admin-server.js';
import { createProxyRegistry } from '../../../proxy/src/telemetry/metrics.js';
import { isLocalHost } from '../../../shared-io/local-request.js';
import { realTimers } from '../../../shared-io/timers.js';

/** The status line's code for `head` (a whole request head, CRLFs included) sent raw to `port`. */
function status(port: number, head: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(head));
    let got = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      got += d;
    });
    s.on('error', reject);
    s.on('close', () => resolve(Number(/^HTTP\/1\.[01] (\d{3})/.exec(got)?.[1] ?? 0)));
  });
}

const get = (path: string, headers: string) => `GET ${path} HTTP/1.1\r\n${headers}connection: close\r\n\r\n`;

let cp: AdminHttp;
let proxy: AdminServer;
const ports: Record<string, number> = {};

beforeAll(async () => {
  cp = new AdminHttp({ listen: '127.0.0.1:0', registry: new Registry(), notReadyReason: () => undefined, certs: () => ({}), config: () => ({ dataDir: '/var/lib/tessera', federation: { trustDomains: [{ bundleEndpointUrl: 'https://fed:pa55w0rd@cp.b.example:8445/' }] } }), endpoints: () => ({}) });
  await cp.start();
  ports['control plane'] = Number(cp.address.split(':').pop());
  proxy = await startAdminServer({ listen: { host: '127.0.0.1', port: 0 }, registry: createProxyRegistry(), readiness: () => ({ ready: true }), certs: async () => ({}), config: () => ({}), timers: realTimers });
  ports['proxy'] = proxy.address.port;
});

afterAll(async () => {
  await cp?.stop();
  await proxy?.close();
});

describe.each(['control plane', 'proxy'])('the %s admin listener', (which) => {
  const routes = ['/config', '/certs', '/metrics', '/endpoints', '/healthz', '/ready'];

  test('served when addressed to an IP literal or localhost, with or without a port, and to same-origin pages', async () => {
    const port = ports[which]!;
    // Host names are case-insensitive and `localhost.` is localhost (RFC 9110 §4.2.3): they were refused (audit 61d).
    for (const host of [`127.0.0.1:${port}`, '127.0.0.1', `localhost:${port}`, `[::1]:${port}`, '10.1.2.3:8444', `LOCALHOST:${port}`, 'LocalHost', `localhost.:${port}`, 'LOCALHOST.']) {
      for (const path of routes) expect(await status(port, get(path, `host: ${host}\r\n`)), `${path} Host ${host}`).toBe(200);
    }
    expect(await status(port, get('/config', `host: 127.0.0.1:${port}\r\nsec-fetch-site: same-origin\r\norigin: http://127.0.0.1:${port}\r\n`))).toBe(200);
    expect(await status(port, get('/config', `host: 127.0.0.1:${port}\r\nsec-fetch-site: none\r\n`))).toBe(200);
    expect(await status(port, get('/config', `host: LOCALHOST:${port}\r\nsec-fetch-site: same-origin\r\norigin: http://localhost:${port}\r\n`))).toBe(200);
  });

  test('refused (403) on every route: a DNS name, a look-alike, a malformed, missing or doubled Host', async () => {
    const port = ports[which]!;
    const hosts = ['evil.example', `evil.example:${port}`, '127.0.0.1.nip.io', 'localhost.evil.example', '[::1]evil.example', `[::1]:${port}x`, `127.0.0.1:${port}:1`, '[evil]', '0x7f000001.evil', 'localhost..', `localhost..:${port}`, '.localhost', 'LOCALHOST.evil.example', `127.0.0.1.:${port}`];
    for (const path of routes) {
      for (const host of hosts) expect(await status(port, get(path, `host: ${host}\r\n`)), `${path} Host ${JSON.stringify(host)}`).toBe(403);
      expect(await status(port, `GET ${path} HTTP/1.0\r\n\r\n`), `${path} no Host`).toBe(403);
      expect(await status(port, get(path, `host: 127.0.0.1\r\nhost: evil.example\r\n`)), `${path} two Hosts`).toBe(403);
    }
  });

  test('refused (403): another site\'s page, by Sec-Fetch-Site or a foreign Origin (an EventSource too)', async () => {
    const port = ports[which]!;
    const local = `host: 127.0.0.1:${port}\r\n`;
    for (const extra of ['sec-fetch-site: cross-site\r\n', 'sec-fetch-site: same-site\r\n', 'sec-fetch-site: none\r\nsec-fetch-site: cross-site\r\n', 'sec-fetch-site: Cross-Site\r\n', 'sec-fetch-site: other\r\n', 'origin: http://evil.example\r\n', 'origin: null\r\n', `origin: http://127.0.0.1:${port}.evil.example\r\n`]) {
      for (const path of ['/config', '/endpoints', '/api/events']) expect(await status(port, get(path, `${local}${extra}`)), `${path} ${extra.trim()}`).toBe(403);
    }
  });
});

test('isLocalHost: an address or localhost (any case, one trailing dot), then at most a port, nothing else', () => {
  const ok = ['127.0.0.1:1', '127.0.0.1:65535', '127.0.0.1', '127.0.0.1:8444', 'localhost', 'localhost:1', '[::1]', '[::1]:8444', '[fd00::1]:443', '10.0.0.1:80', 'LOCALHOST', 'LocalHost:8444', 'localhost.', 'LOCALHOST.:1'];
  const no = ['[::1%evil.example]', '[fe80::1%eth0]:80', '127.0.0.1:0', '127.0.0.1:99999', '127.0.0.1:65536', '127.0.0.1:08444', '', 'cp.internal:8444', '[::1]evil.example', '[::1]:', '[::1]:84x', 'localhost:', 'localhost:123456', '127.0.0.1 ', ' 127.0.0.1', 'localhost\t', '[127.0.0.1]', '127.1', 'localhost..', '.localhost', 'localhost.:', 'localhost. ', 'LOCALHOST.EVIL.EXAMPLE', '127.0.0.1.', undefined];
  for (const h of ok) expect(isLocalHost(h), h).toBe(true);
  for (const h of no) expect(isLocalHost(h), JSON.stringify(h)).toBe(false);
});

test('the control plane\'s admin listener holds at most ADMIN_MAX_CONNECTIONS: past them the oldest idle one makes room, so a probe is served at once', async () => {
  const port = ports['control plane']!;
  const held = await Promise.all(
    Array.from({ length: ADMIN_MAX_CONNECTIONS }, () =>
      new Promise<{ socket: Socket; closed: Promise<unknown> }>((resolve) => {
        const s = connect(port, '127.0.0.1', () => resolve({ socket: s, closed: new Promise((r) => s.on('close', r)) }));
        s.on('error', () => {});
      }),
    ),
  );
  try {
    await new Promise((r) => setTimeout(r, 100));
    expect(await status(port, get('/healthz', 'host: 127.0.0.1\r\n'))).toBe(200);
    // The oldest held connection was the one closed.
    await held[0]!.closed;
  } finally {
    for (const h of held) h.socket.destroy();
  }
});

test('the control plane\'s admin listener cuts a client that pipelines without reading', async () => {
  const port = ports['control plane']!;
  const s = connect(port, '127.0.0.1');
  s.on('error', () => {});
  s.pause();
  s.write('GET /metrics HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n'.repeat(2_000));
  // Cut by the server at the second request; the client, reading again, sees the end.
  await new Promise((r) => setTimeout(r, 200));
  s.resume();
  await new Promise((r) => s.on('close', r)); // a reset is the end too
  expect(await status(port, get('/healthz', 'host: 127.0.0.1\r\n'))).toBe(200);
});

test('the control plane\'s /config shows no URL user:password', async () => {
  const body = await (await fetch(`http://127.0.0.1:${ports['control plane']}/config`)).text();
  expect(body).not.toContain('pa55w0rd');
  expect(body).toContain('https://<redacted>@cp.b.example:8445/');
});
