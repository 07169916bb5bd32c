// What an HTTP/2 client's resets can do to a real `tessera proxy` process, on every h2 surface (audit 7b).
//
// Never exit it (finding 1). A stream the proxy answers itself (403 authz_denied, 400 bad_request) is held open by a
// client that advertises SETTINGS_INITIAL_WINDOW_SIZE = 0, so the answer's body cannot be written; the client then
// resets the TCP connection, overflows the connection's flow-control window (a connection error) or resets the
// stream with INTERNAL_ERROR. node:http2 then emitted 'error' on a stream with no listener and the process exited.
// Checked on the edge (anonymous client), the inbound http2 and grpc listeners (a verified peer no policy allows)
// and the outbound h2c listener (the local app); then the process must be up and serve another client. And the kin
// of that crash: an upstream answering `:status: 600` (node:http2 throws from respond), and an edge client that
// resets with NO_ERROR a request whose body its HTTP/1.1 app is not reading (the stream is closed before it is
// destroyed, and answering it threw).
//
// Cut a rapid reset short (finding 2): an edge or outbound connection whose streams the client resets before any
// answer, past a window's worth and more than half of them, gets GOAWAY ENHANCE_YOUR_CALM, counted as
// tessera_requests_rejected_total{reason="premature_reset"}; an inbound session, which a peer proxy shares among its
// clients, is drained instead (GOAWAY NO_ERROR), so edge clients' resets passed on never fail another client's
// request on it; a client cancelling a full window at once, or one stream in four, is left alone. Real processes,
// raw frames over real sockets, on loopback.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { h2Frame as frame, rawH2App } from '../helpers/raw-h2-app.js';
import { makeTempDir } from '../helpers/run.js';
import { metricsText, sumSeries } from '../helpers/prom-metrics.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
/** A verified mesh peer no policy allows anything: every request of its is denied (403), which is the trigger. */
const OTHER = `spiffe://${TD}/ns/default/sa/other`;

let dir: string;
let cleanup: () => Promise<void>;
let api: ProxyProcess;
let web: ProxyProcess;
const creds: Record<'web' | 'other', { cert: string; key: string }> = { web: { cert: '', key: '' }, other: { cert: '', key: '' } };
const servers: net.Server[] = [];

// ---- the apps ----

/** Requests the h2c app received, by the path's first two segments (e.g. "/public/rapid-edge"). */
const appSeen = new Map<string, number>();

/** h2c app: 200 "ok" to every request once its body is read; 300 ms later for a path with "slow" in it; 500 × 64 KiB over 5 s for "stream". */
function startH2App(): Promise<number> {
  // No RST_STREAM limit of the app's own (nghttp2's 1,000, then 33 a second): what is tested is the proxies' sessions.
  const app = http2.createServer({ streamResetBurst: 1_000_000, streamResetRate: 1_000_000 });
  app.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    const path = String(headers[':path']);
    const key = path.split('/').slice(0, 3).join('/');
    appSeen.set(key, (appSeen.get(key) ?? 0) + 1);
    stream.resume();
    if (path.includes('stream')) {
      // 64 KiB every 10 ms for 5 s (~32 MB), then the end: a download in progress.
      stream.respond({ ':status': 200 });
      const chunk = Buffer.alloc(64 * 1024, 0x62);
      let n = 0;
      const t = setInterval(() => {
        if (stream.destroyed || stream.closed) return clearInterval(t);
        if (++n < 500) return void stream.write(chunk);
        clearInterval(t);
        stream.end(chunk);
      }, 10);
      return;
    }
    stream.on('end', () => {
      setTimeout(
        () => {
          if (stream.destroyed || stream.closed) return;
          stream.respond({ ':status': 200 });
          stream.end('ok');
        },
        path.includes('slow') ? 300 : 0,
      );
    });
  });
  app.on('sessionError', () => undefined);
  return listen(app);
}

/** A raw h2c app that answers every request with `:status: 600`, which an HTTP/2 peer may send and node:http2 will not. */
function startStatus600App(): Promise<number> {
  return listen(rawH2App((s, id) => s.write(frame(HEADERS, END_HEADERS | END_STREAM, id, block([[':status', '600']])))));
}

/** HTTP/1.1 app that reads a request's head, then stops reading (its body backs up) and answers 200 after 1.5 s. */
function startSlowHttp1App(): Promise<number> {
  return listen(
    net.createServer((s) => {
      s.on('error', () => undefined);
      let head = '';
      const onData = (d: Buffer) => {
        head += d.toString('latin1');
        if (!head.includes('\r\n\r\n')) return;
        s.off('data', onData);
        s.pause();
        setTimeout(() => s.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok'), 1_500);
      };
      s.on('data', onData);
    }),
  );
}

function listen(server: net.Server): Promise<number> {
  servers.push(server);
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as net.AddressInfo).port)));
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const ca = await TestCa.create({ trustDomain: TD });
  const h2App = await startH2App();
  const app600 = await startStatus600App();
  const slowApp = await startSlowHttp1App();
  await writeSvidFiles(ca, API, join(dir, 'api'));
  await writeSvidFiles(ca, WEB, join(dir, 'web'));
  await writeSvidFiles(ca, OTHER, join(dir, 'other'));
  for (const who of ['web', 'other'] as const) creds[who] = { cert: await readFile(join(dir, who, 'svid.pem'), 'utf8'), key: await readFile(join(dir, who, 'key.pem'), 'utf8') };
  await mkdir(join(dir, 'policies'));
  const allow = (name: string, selector: string, from: string) =>
    `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: ${name} }\nspec:\n  selector: ${selector}\n  action: ALLOW\n  rules:\n    - from: ["${from}"]\n      to: { paths: ["/public/**"] }\n---\n`;
  await writeFile(join(dir, 'policies', 'all.yaml'), allow('api-allow-web', API, WEB) + allow('edge-allow-anyone', WEB, 'unauthenticated'));
  const common = (name: string) =>
    `identity:\n  files: { certFile: ${name}/svid.pem, keyFile: ${name}/key.pem, bundleFile: ${name}/bundle.pem }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\nauthorization: { policiesDir: policies, defaultAction: deny }\n`;
  await writeFile(
    join(dir, 'api.yaml'),
    `${common('api')}inbound:\n` +
      `  - { name: app-h2, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${h2App}, protocol: http2 }\n` +
      `  - { name: app-grpc, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${h2App}, protocol: grpc }\n` +
      `  - { name: app-600, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${app600}, protocol: http2 }\n`,
  );
  api = await startProxyProcess(join(dir, 'api.yaml'));
  await writeFile(
    join(dir, 'web.yaml'),
    `${common('web')}outbound:\n` +
      `  - { name: api-h2, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/app-h2')}, spiffeId: ${API}, protocol: http2 }\n` +
      'edge:\n  - name: public\n    listen: 127.0.0.1:0\n    certFile: web/svid.pem\n    keyFile: web/key.pem\n    authorize: true\n    routes:\n' +
      `      - { host: slow.example.test, pathPrefix: /, upstream: 127.0.0.1:${slowApp}, unsafePlaintext: true, protocol: http }\n` +
      `      - { host: mesh.example.test, pathPrefix: /, upstream: 127.0.0.1:${api.ports.get('inbound/app-h2')}, spiffeId: ${API}, protocol: http2 }\n` +
      `      - { host: bad.example.test, pathPrefix: /, upstream: 127.0.0.1:${app600}, unsafePlaintext: true, protocol: http2 }\n` +
      `      - { host: "*", pathPrefix: /, upstream: 127.0.0.1:${h2App}, unsafePlaintext: true, protocol: http2 }\n`,
  );
  web = await startProxyProcess(join(dir, 'web.yaml'));
}, 60_000);

afterAll(async () => {
  await web?.stop();
  await api?.stop();
  for (const s of servers) s.close();
  await cleanup?.();
});

// ---- raw HTTP/2 ----

const HEADERS = 1;
const RST_STREAM = 3;
const SETTINGS = 4;
const GOAWAY = 7;
const WINDOW_UPDATE = 8;
const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly stream: number;
  readonly payload: Buffer;
}


function takeFrame(buf: Buffer): Frame | null {
  if (buf.length < 9) return null;
  const len = buf.readUIntBE(0, 3);
  if (buf.length < 9 + len) return null;
  return { type: buf[3]!, flags: buf[4]!, stream: buf.readUInt32BE(5) & 0x7fffffff, payload: buf.subarray(9, 9 + len) };
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** A header block of literal fields without indexing, new names (RFC 7541 §6.2.2); names and values under 127 bytes. */
function block(fields: readonly (readonly [string, string])[]): Buffer {
  return Buffer.concat(fields.map(([n, v]) => Buffer.concat([Buffer.from([0, n.length]), Buffer.from(n, 'latin1'), Buffer.from([v.length]), Buffer.from(v, 'latin1')])));
}

interface Surface {
  readonly name: string;
  /** The process serving it, and its listener's port. */
  proc(): ProxyProcess;
  port(): number;
  /** none: plaintext h2c (the outbound listener's local app); tls: anonymous (edge); or a client SVID. */
  readonly security: 'none' | 'tls' | 'web' | 'other';
  /** A request this surface answers itself, with the status it answers. */
  readonly refused: readonly (readonly [string, string])[];
  readonly grpc?: boolean;
  /** A request it forwards (as a client it serves), for the bystander. */
  readonly served: { readonly path: string; readonly authority: string; readonly security: 'none' | 'tls' | 'web' };
}

const request = (scheme: string, path: string, extra: readonly (readonly [string, string])[] = []) => [[':method', 'GET'], [':scheme', scheme], [':path', path], [':authority', 'a.example.test'], ...extra] as const;

const SURFACES: readonly Surface[] = [
  { name: 'edge h2, 403 authz_denied (anonymous)', proc: () => web, port: () => web.ports.get('edge/public')!, security: 'tls', refused: request('https', '/denied'), served: { path: '/public/ok', authority: 'a.example.test', security: 'tls' } },
  { name: 'edge h2, 400 bad_request (a fragment)', proc: () => web, port: () => web.ports.get('edge/public')!, security: 'tls', refused: request('https', '/public/x#y'), served: { path: '/public/ok', authority: 'a.example.test', security: 'tls' } },
  { name: 'inbound http2, 403 for a peer no policy allows', proc: () => api, port: () => api.ports.get('inbound/app-h2')!, security: 'other', refused: request('https', '/public/x'), served: { path: '/public/ok', authority: 'api', security: 'web' } },
  {
    name: 'inbound grpc, PERMISSION_DENIED for a peer no policy allows',
    proc: () => api,
    port: () => api.ports.get('inbound/app-grpc')!,
    security: 'other',
    grpc: true,
    refused: request('https', '/pkg.Svc/Call', [
      ['content-type', 'application/grpc'],
      ['te', 'trailers'],
    ]),
    served: { path: '/public/ok', authority: 'api', security: 'web' },
  },
  { name: 'outbound h2c, 400 bad_request (a fragment) for the local app', proc: () => web, port: () => web.ports.get('outbound/api-h2')!, security: 'none', refused: request('http', '/public/a#b'), served: { path: '/public/ok', authority: 'api', security: 'none' } },
];

interface RawConn {
  /** The TCP socket under any TLS, for a hard reset. */
  readonly tcp: net.Socket;
  readonly socket: net.Socket;
  readonly frames: Frame[];
  closed: boolean;
}

async function rawOpen(port: number, security: Surface['security']): Promise<RawConn> {
  const tcp = net.connect(port, '127.0.0.1');
  tcp.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    tcp.once('connect', resolve);
    tcp.once('error', reject);
  });
  let socket: net.Socket = tcp;
  if (security !== 'none') {
    const t = tls.connect({ socket: tcp, ALPNProtocols: ['h2'], rejectUnauthorized: false, servername: 'a.example.test', ...(security === 'tls' ? {} : creds[security]) });
    await new Promise<void>((resolve, reject) => {
      t.once('secureConnect', resolve);
      t.once('error', reject);
    });
    socket = t;
  }
  const conn: RawConn = { tcp, socket, frames: [], closed: false };
  let buf = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    for (let f = takeFrame(buf); f; f = takeFrame(buf)) {
      buf = buf.subarray(9 + f.payload.length);
      conn.frames.push(f);
      if (f.type === SETTINGS && (f.flags & ACK) === 0 && !socket.destroyed) socket.write(frame(SETTINGS, ACK, 0));
    }
  });
  socket.on('error', () => undefined);
  socket.once('close', () => {
    conn.closed = true;
  });
  return conn;
}

/** A plain request from a well-behaved client (node:http2) on `s`'s listener: the status it got. */
function bystander(s: Surface): Promise<number> {
  const { served } = s;
  const url = `${served.security === 'none' ? 'http' : 'https'}://127.0.0.1:${s.port()}`;
  return new Promise((resolve) => {
    const session = http2.connect(url, { rejectUnauthorized: false, servername: 'a.example.test', ...(served.security === 'web' ? creds.web : {}) });
    session.on('error', () => resolve(0));
    const req = session.request({ ':path': served.path, ':authority': served.authority, ...(s.grpc ? { 'content-type': 'application/grpc', te: 'trailers' } : {}) });
    req.on('error', () => resolve(0));
    req.on('close', () => resolve(0)); // no answer (after one, 'end' resolved first)
    req.on('response', (h) => {
      req.resume();
      req.on('end', () => {
        session.close();
        resolve(Number(h[':status']));
      });
    });
    req.end();
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const TRIGGERS = {
  'a TCP reset': (c: RawConn) => c.tcp.resetAndDestroy(),
  'a WINDOW_UPDATE that overflows the connection window': (c: RawConn) => c.socket.write(frame(WINDOW_UPDATE, 0, 0, u32(0x7fffffff))),
  'RST_STREAM INTERNAL_ERROR on the refused stream': (c: RawConn) => c.socket.write(frame(RST_STREAM, 0, 1, u32(http2.constants.NGHTTP2_INTERNAL_ERROR))),
} as const;

describe.each(SURFACES)('$name', (s) => {
  test.each(Object.keys(TRIGGERS) as (keyof typeof TRIGGERS)[])('held by a zero window, then %s: the process stays up and serves another client', async (trigger) => {
    const proc = s.proc();
    const c = await rawOpen(s.port(), s.security);
    const settings = Buffer.alloc(6);
    settings.writeUInt16BE(SETTINGS_INITIAL_WINDOW_SIZE, 0);
    settings.writeUInt32BE(0, 2);
    c.socket.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0, settings)]));
    await until('the server SETTINGS', () => c.frames.some((f) => f.type === SETTINGS), 5_000, 10);
    c.socket.write(frame(HEADERS, END_HEADERS | END_STREAM, 1, block(s.refused)));
    // The proxy's own answer: its head goes out (HEADERS are not flow-controlled), its body, if any, waits.
    await until('the local answer', () => c.frames.some((f) => f.type === HEADERS && f.stream === 1), 5_000, 10);
    TRIGGERS[trigger](c);
    await sleep(300);
    expect(proc.child.exitCode, proc.stderr()).toBeNull();
    expect(proc.child.signalCode).toBeNull();
    expect(await bystander(s)).toBe(200);
    expect(proc.child.exitCode, proc.stderr()).toBeNull();
    c.socket.destroy();
  });
});

test('an upstream answering `:status: 600` gets its client a 502 (inbound app, edge route), never a crash', async () => {
  const get = (url: string, authority: string, cred: object) =>
    new Promise<{ status: number; error: string | undefined }>((resolve) => {
      const session = http2.connect(url, { rejectUnauthorized: false, servername: authority, ...cred });
      session.on('error', () => resolve({ status: 0, error: undefined }));
      const req = session.request({ ':path': '/public/x', ':authority': authority });
      req.on('error', () => resolve({ status: 0, error: undefined }));
      req.on('close', () => resolve({ status: 0, error: undefined })); // no answer (after one, 'end' resolved first)
      req.on('response', (h) => {
        req.resume();
        req.on('end', () => {
          session.close();
          resolve({ status: Number(h[':status']), error: h['x-tessera-error'] as string | undefined });
        });
      });
      req.end();
    });
  expect(await get(`https://127.0.0.1:${api.ports.get('inbound/app-600')}`, 'api', creds.web)).toEqual({ status: 502, error: 'bad_upstream_response' });
  expect(await get(`https://127.0.0.1:${web.ports.get('edge/public')}`, 'bad.example.test', {})).toEqual({ status: 502, error: 'bad_upstream_response' });
  await sleep(200);
  expect(api.child.exitCode, api.stderr()).toBeNull();
  expect(web.child.exitCode, web.stderr()).toBeNull();
  expect(await bystander(SURFACES[2]!)).toBe(200);
  expect(await bystander(SURFACES[0]!)).toBe(200);
});

test('edge h2 → HTTP/1.1: a request whose body the app is not reading, reset by the client with NO_ERROR, then answered by the app: the edge stays up', async () => {
  const port = web.ports.get('edge/public')!;
  const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, servername: 'slow.example.test' });
  session.on('error', () => undefined);
  const req = session.request({ ':method': 'POST', ':path': '/public/upload', ':authority': 'slow.example.test' });
  req.on('error', () => undefined);
  // Writes until flow control holds the body back at every hop (the app reads nothing after the head).
  let sent = 0;
  let stalled = false;
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const pump = () => {
    while (sent < 64 * 1024 * 1024) {
      sent += chunk.length;
      if (!req.write(chunk)) return;
    }
  };
  req.on('drain', pump);
  pump();
  let last = -1;
  await until(
    'the body stalls',
    () => {
      stalled = sent === last;
      last = sent;
      return stalled;
    },
    10_000,
    200,
  );
  req.close(http2.constants.NGHTTP2_NO_ERROR); // RST_STREAM NO_ERROR
  await sleep(2_000); // past the app's answer (1.5 s after the head)
  session.destroy();
  expect(web.child.exitCode, web.stderr()).toBeNull();
  expect(await bystander(SURFACES[0]!)).toBe(200);
});

// ---- premature resets (rapid reset) ----

/** The surfaces a rapid reset is tried on: each forwards `/public/rapid-<tag>/…` to the h2c app. */
const RAPID = [
  { tag: 'edge', direction: 'edge', authority: 'a.example.test', goaway: http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, proc: () => web, port: () => web.ports.get('edge/public')!, security: 'tls' as const, scheme: 'https' },
  { tag: 'outbound', direction: 'outbound', authority: 'api', goaway: http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, proc: () => web, port: () => web.ports.get('outbound/api-h2')!, security: 'none' as const, scheme: 'http' },
  // Drained, not cut: a mesh peer's session is shared by its own clients (the test after these).
  { tag: 'inbound', direction: 'inbound', authority: 'api', goaway: http2.constants.NGHTTP2_NO_ERROR, proc: () => api, port: () => api.ports.get('inbound/app-h2')!, security: 'web' as const, scheme: 'https' },
];
/** The allowance with the default limits.maxConcurrentStreams (100): h2-reset-budget.ts. */
const ALLOWANCE = 100;

const prematureResets = async (p: ProxyProcess, direction: string) => sumSeries(await metricsText(p.admin), 'tessera_requests_rejected_total', { direction, reason: 'premature_reset' });

/** HEADERS then RST_STREAM CANCEL, `n` times on a new connection, a few pairs a write with a breath between (so streams reach the app). */
async function rapidReset(port: number, security: Surface['security'], scheme: string, authority: string, path: (i: number) => string, n: number): Promise<RawConn> {
  const c = await rawOpen(port, security);
  c.socket.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0)]));
  await until('the server SETTINGS', () => c.frames.some((f) => f.type === SETTINGS), 5_000, 10);
  for (let i = 0; i < n && !c.closed; i++) {
    const id = 2 * i + 1;
    const head = [[':method', 'GET'], [':scheme', scheme], [':path', path(i)], [':authority', authority]] as const;
    c.socket.write(Buffer.concat([frame(HEADERS, END_HEADERS | END_STREAM, id, block(head)), frame(RST_STREAM, 0, id, u32(http2.constants.NGHTTP2_CANCEL))]));
    if (i % 4 === 3) await sleep(1);
  }
  return c;
}

describe.each(RAPID)('rapid reset: $tag', (r) => {
  test('HEADERS then RST_STREAM CANCEL, 400 times: GOAWAY once past the allowance (inbound: NO_ERROR, a drain), counted; the app saw about the allowance', async () => {
    const before = await prematureResets(r.proc(), r.direction);
    const c = await rapidReset(r.port(), r.security, r.scheme, r.authority, (i) => `/public/rapid-${r.tag}/slow/${i}`, 400);
    await until('GOAWAY', () => c.frames.some((f) => f.type === GOAWAY) || c.closed, 15_000, 10);
    const goaway = c.frames.find((f) => f.type === GOAWAY);
    expect(goaway?.payload.readUInt32BE(4)).toBe(r.goaway);
    // The last stream it processed: the allowance plus what was in flight, far short of the 400 sent (id 799);
    // loose, since on a loaded machine more of the 400 are read before the budget is looked at.
    expect(goaway!.payload.readUInt32BE(0) & 0x7fffffff).toBeLessThanOrEqual(2 * (2 * ALLOWANCE + 50) + 1);
    expect(appSeen.get(`/public/rapid-${r.tag}`) ?? 0).toBeLessThanOrEqual(2 * ALLOWANCE + 50);
    await until('counted', async () => (await prematureResets(r.proc(), r.direction)) === before + 1, 15_000, 50);
    c.socket.destroy();
    expect(r.proc().child.exitCode).toBeNull();
  });
});

test('rapid resets by edge clients on a mesh route never fail another client\'s request on the edge\'s shared session to the sidecar (drained, not cut)', async () => {
  const edgePort = web.ports.get('edge/public')!;
  // A download in progress on the edge's session to the sidecar (~32 MB over 5 s).
  const session = http2.connect(`https://127.0.0.1:${edgePort}`, { rejectUnauthorized: false, servername: 'mesh.example.test' });
  session.on('error', () => undefined);
  const download = new Promise<{ status: number; bytes: number; rstCode: number }>((resolve) => {
    const req = session.request({ ':path': '/public/mesh-bystander/stream', ':authority': 'mesh.example.test' });
    let status = 0;
    let bytes = 0;
    req.on('error', () => undefined);
    req.on('response', (h) => {
      status = Number(h[':status']);
    });
    req.on('data', (d: Buffer) => {
      bytes += d.length;
    });
    req.on('close', () => resolve({ status, bytes, rstCode: req.rstCode ?? 0 }));
    req.end();
  });
  await until('it reached the app', () => (appSeen.get('/public/mesh-bystander') ?? 0) === 1, 5_000, 10);
  // Attackers, each cut by the edge's budget: their streams, cancelled, all share that session.
  const attack = async () => {
    const c = await rapidReset(edgePort, 'tls', 'https', 'mesh.example.test', (i) => `/public/mesh-rapid/slow/${i}`, 400);
    await sleep(500);
    c.socket.destroy();
  };
  // Forty: past nghttp2's own RST_STREAM limit (1,000 a session) had that session not been drained before it.
  await Promise.all(Array.from({ length: 40 }, attack));
  expect(await download).toEqual({ status: 200, bytes: 500 * 64 * 1024, rstCode: 0 });
  session.close();
});

describe('legitimate cancellation is left alone (edge)', () => {
  /** One edge connection (node:http2, as a browser or gRPC client would be); `one` makes a request, cancelled 20 ms in or not. */
  function client() {
    const session = http2.connect(`https://127.0.0.1:${web.ports.get('edge/public')}`, { rejectUnauthorized: false, servername: 'a.example.test' });
    session.on('error', () => undefined);
    const state = { goaway: false };
    session.on('goaway', () => {
      state.goaway = true;
    });
    let n = 0;
    const one = (cancel: boolean) =>
      new Promise<number>((resolve) => {
        const req = session.request({ ':path': `/public/legit-edge/slow/${n++}`, ':authority': 'a.example.test' });
        req.on('error', () => resolve(-1));
        req.on('close', () => resolve(cancel ? 0 : -1));
        req.on('response', (h) => {
          req.resume();
          req.on('end', () => resolve(Number(h[':status'])));
        });
        req.end();
        if (cancel) setTimeout(() => req.close(http2.constants.NGHTTP2_CANCEL), 20);
      });
    return { session, state, one };
  }

  test('a full window (limits.maxConcurrentStreams) cancelled at once before any answer, as a page left: the connection goes on', async () => {
    const before = await prematureResets(web, 'edge');
    const c = client();
    await Promise.all(Array.from({ length: ALLOWANCE }, () => c.one(true)));
    expect(await c.one(false)).toBe(200);
    expect(c.state.goaway).toBe(false);
    c.session.close();
    expect(await prematureResets(web, 'edge')).toBe(before);
  });

  test('one stream in four cancelled before its answer, over 600 streams (a gRPC client with deadlines): the connection goes on', async () => {
    const before = await prematureResets(web, 'edge');
    const c = client();
    const statuses = await Promise.all(Array.from({ length: 600 }, (_, i) => c.one(i % 4 === 0)));
    expect(statuses.filter((s) => s === 200)).toHaveLength(450);
    expect(await c.one(false)).toBe(200);
    expect(c.state.goaway).toBe(false);
    c.session.close();
    expect(await prematureResets(web, 'edge')).toBe(before);
  });
});
