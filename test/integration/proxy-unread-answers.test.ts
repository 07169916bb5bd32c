// Callers that pipeline requests and never read the answers, against real `tessera proxy` processes (audit 7, F1):
// an unauthenticated caller on a permissive inbound listener (refused, 403), a mesh peer speaking tessera-mux/1 to
// the inbound listener directly (refused, 403), an anonymous client of the edge (no route, 404), and an app calling
// through its outbound listener over the multiplexed transport (answers forwarded from the app, 4 KiB each). Each
// caller sends a bounded amount and reads nothing; the proxy's RSS (from /proc) must stay within a bound and another
// caller must still be served. Before the fix every answer was queued for the caller: RSS grew by 10-14 bytes for
// each byte it sent (hundreds of MiB here). Raw sockets, loopback.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import * as net from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Flag, FrameType, MUX_ALPN } from '../../proxy/src/mux/mux-frame.js';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { peakRssBytes, rssBytes } from '../helpers/process-rss.js';
import { drainedWithin } from '../helpers/socket-drain.js';
import { firstStatus, oneResponse, rawHttp } from '../helpers/raw-http.js';
import { frame } from '../helpers/mux-wire.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const EVIL = `spiffe://${TD}/ns/default/sa/evil`;
const MiB = 1 << 20;
/** What a caller sends at most: before the fix the proxy took all of it, and queued an answer for every request. */
const SEND_CAP = 32 * MiB;
/** The proxy's RSS may grow this much while it is flooded (parsing and garbage included), not with what is sent. */
const RSS_BOUND = 100 * MiB;
/** No 'drain' for this long: the proxy has stopped reading the caller (the loop ends, nothing is asserted on time). */
const STALLED_MS = 2_000;
const BIG = 4 * 1024;

let dir: string;
let cleanup: () => Promise<void>;
let api: ProxyProcess;
/** The same config as api, for the mux caller alone: each entry point is measured on a process no other flooded. */
let apiMux: ProxyProcess;
let web: ProxyProcess;
let edge: ProxyProcess;
let app: { close(): void };
let appReceived = 0;
let evilTls: tls.ConnectionOptions;
let webTls: tls.ConnectionOptions;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const server = createServer((req, res) => {
    appReceived++;
    req.resume();
    const body = req.url?.startsWith('/big/') ? Buffer.alloc(BIG, 'b') : Buffer.from('ok\n');
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  });
  const appPort = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as net.AddressInfo).port)));
  app = { close: () => server.close() };
  const ca = await TestCa.create({ trustDomain: TD });
  await writeSvidFiles(ca, API, join(dir, 'api'));
  const w = await writeSvidFiles(ca, WEB, join(dir, 'web'));
  const e = await writeSvidFiles(ca, EVIL, join(dir, 'evil'));
  const pem = async (f: { certFile: string; keyFile: string; bundleFile: string }) => ({ cert: await readFile(f.certFile, 'utf8'), key: await readFile(f.keyFile, 'utf8'), ca: await readFile(f.bundleFile, 'utf8') });
  evilTls = { ...(await pem(e)), ALPNProtocols: [MUX_ALPN] };
  webTls = { ...(await pem(w)), ALPNProtocols: ['http/1.1'] };
  await mkdir(join(dir, 'policies'));
  // web may call /public/** and /big/**, a plaintext caller GET /public/**; evil nothing. Everything else: 403.
  await writeFile(
    join(dir, 'policies', 'allow.yaml'),
    `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n` +
      `    - from: [${WEB}]\n      to: { paths: ["/public/**", "/big/**"] }\n    - from: [unauthenticated]\n      to: { methods: [GET], paths: ["/public/**"] }\n`,
  );
  const identity = (name: string) => `identity:\n  files: { certFile: ${name}/svid.pem, keyFile: ${name}/key.pem, bundleFile: ${name}/bundle.pem }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n`;
  await writeFile(
    join(dir, 'api.yaml'),
    `${identity('api')}authorization: { policiesDir: policies }\ninbound:\n` +
      `  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort}, protocol: http }\n` +
      `  - { name: perm, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort}, protocol: http, mtls: permissive }\n`,
  );
  api = await startProxyProcess(join(dir, 'api.yaml'));
  const upstream = `127.0.0.1:${api.ports.get('inbound/app')}`;
  await writeFile(join(dir, 'web.yaml'), `${identity('web')}outbound:\n  - { name: api, listen: 127.0.0.1:0, upstream: ${upstream}, spiffeId: ${API}, protocol: http }\n`);
  await writeFile(
    join(dir, 'edge.yaml'),
    `${identity('web')}edge:\n  - name: public\n    listen: 127.0.0.1:0\n    certFile: web/svid.pem\n    keyFile: web/key.pem\n    authorize: false\n` +
      `    routes: [{ host: "*", pathPrefix: /public, upstream: ${upstream}, spiffeId: ${API} }]\n`,
  );
  [web, edge, apiMux] = await Promise.all([startProxyProcess(join(dir, 'web.yaml')), startProxyProcess(join(dir, 'edge.yaml')), startProxyProcess(join(dir, 'api.yaml'))]);
}, 60_000);

afterAll(async () => {
  await Promise.all([web?.stop(), edge?.stop(), apiMux?.stop()]);
  await api?.stop();
  app?.close();
  await cleanup?.();
});

/** Resident memory of a proxy process, from /proc. */
const rss = (p: ProxyProcess) => rssBytes(p.child.pid!);

/** The largest RSS seen while `during` runs (sampled every 100 ms) and just after it. */
const peakRss = (p: ProxyProcess, during: () => Promise<void>) => peakRssBytes(p.child.pid!, during);

/** Opens a connection and stops reading it at once. */
async function unreading(connect: () => net.Socket, ready: 'connect' | 'secureConnect'): Promise<net.Socket> {
  const socket = connect();
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once(ready, () => resolve());
    socket.once('error', reject);
  });
  socket.pause();
  return socket;
}

/** Writes `blob` again and again, reading nothing, until SEND_CAP is sent, the socket closes, or the proxy stops reading. */
async function flood(socket: net.Socket, blob: () => Buffer): Promise<number> {
  let sent = 0;
  while (sent < SEND_CAP && !socket.destroyed) {
    const b = blob();
    sent += b.length;
    if (socket.write(b)) continue;
    const drained = await drainedWithin(socket, STALLED_MS);
    if (!drained) break;
  }
  return sent;
}

const pipelined = (request: string) => {
  const blob = Buffer.from(request.repeat(Math.floor(65_536 / request.length)), 'latin1');
  return () => blob;
};

/** The status of one request made the ordinary way (a fresh connection, read to the end). */
async function served(port: number, path: string, tlsOptions?: tls.ConnectionOptions): Promise<number> {
  const r = await rawHttp({ port, ...(tlsOptions ? { tls: tlsOptions } : {}) }, [`GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`], { until: oneResponse, capMs: 10_000 });
  return firstStatus(r.text);
}

describe('a caller that pipelines and never reads: memory stays bounded, others are served', () => {
  test('an unauthenticated caller on a permissive inbound listener, every request refused (403)', async () => {
    const port = api.ports.get('inbound/perm')!;
    const before = await rss(api);
    let attacker: net.Socket | undefined;
    const peak = await peakRss(api, async () => {
      attacker = await unreading(() => net.connect(port, '127.0.0.1'), 'connect');
      await flood(attacker, pipelined('GET /denied HTTP/1.1\r\nHost: a\r\n\r\n'));
    });
    try {
      expect(peak - before).toBeLessThan(RSS_BOUND);
      expect(await served(port, '/public/ok')).toBe(200);
    } finally {
      attacker?.destroy();
    }
  }, 120_000);

  test('a mesh peer speaking tessera-mux/1 to the inbound listener, every request refused (403)', async () => {
    const port = apiMux.ports.get('inbound/app')!;
    const before = await rss(apiMux);
    let attacker: net.Socket | undefined;
    const peak = await peakRss(apiMux, async () => {
      attacker = await unreading(() => tls.connect({ host: '127.0.0.1', port, ...evilTls, checkServerIdentity: () => undefined }), 'secureConnect');
      expect((attacker as tls.TLSSocket).alpnProtocol).toBe(MUX_ALPN);
      attacker.write(frame(FrameType.Data, Flag.Syn, 0, 1, 0));
      // One stream, DATA frames of pipelined requests; window updates are never read (it sends as if granted).
      const requests = Buffer.from('GET /denied HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(1_800), 'latin1');
      const dataFrame = frame(FrameType.Data, 0, 0, 1, requests.length, requests);
      await flood(attacker, () => dataFrame);
    });
    try {
      expect(peak - before).toBeLessThan(RSS_BOUND);
      // Another mesh caller: web over HTTP/1.1, straight to the same listener.
      expect(await served(port, '/public/ok', { ...webTls, checkServerIdentity: () => undefined })).toBe(200);
    } finally {
      attacker?.destroy();
    }
  }, 120_000);

  test('an anonymous client of the edge, no route for any request (404)', async () => {
    const port = edge.ports.get('edge/public')!;
    const before = await rss(edge);
    let attacker: net.Socket | undefined;
    const peak = await peakRss(edge, async () => {
      attacker = await unreading(() => tls.connect({ host: '127.0.0.1', port, ALPNProtocols: ['http/1.1'], rejectUnauthorized: false }), 'secureConnect');
      await flood(attacker, pipelined('GET /nowhere HTTP/1.1\r\nHost: a\r\n\r\n'));
    });
    try {
      expect(peak - before).toBeLessThan(RSS_BOUND);
      expect(await served(port, '/public/ok', { rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })).toBe(200);
    } finally {
      attacker?.destroy();
    }
  }, 120_000);

  test('an app calling through its outbound listener over the multiplexed transport, answers forwarded (4 KiB each)', async () => {
    const port = web.ports.get('outbound/api')!;
    const N = 30_000;
    const before = { web: await rss(web), api: await rss(api) };
    const start = appReceived;
    let attacker: net.Socket | undefined;
    let apiPeak = before.api;
    const webPeak = await peakRss(web, async () => {
      apiPeak = await peakRss(api, async () => {
        attacker = await unreading(() => net.connect(port, '127.0.0.1'), 'connect');
        // 1.2 MB of requests (the kernel takes them all); 120 MB of answers if each were queued for the caller.
        attacker.write(Array.from({ length: N }, (_, i) => `GET /big/${i} HTTP/1.1\r\nHost: a\r\n\r\n`).join(''));
        // Until the proxies stop forwarding (or every request was): the quiet second ends it, nothing is timed.
        let last = -1;
        await until('the exchanges settle', () => {
          const now = appReceived;
          const quiet = now === last;
          last = now;
          return quiet || now - start >= N;
        }, 120_000, 1_000);
      });
    });
    try {
      expect(appReceived - start).toBeLessThan(N);
      expect(webPeak - before.web).toBeLessThan(RSS_BOUND);
      expect(apiPeak - before.api).toBeLessThan(RSS_BOUND);
      expect(await served(port, '/public/ok')).toBe(200);
    } finally {
      attacker?.destroy();
    }
  }, 180_000);
});
