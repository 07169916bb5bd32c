// Request and response semantics under hostile input, on every HTTP listener kind with real processes: web's
// sidecar (outbound HTTP/1.1, HTTP/2, gRPC) → mTLS → api's sidecar (inbound) → apps, and an edge in front of api.
// Families: a late answer after the request timeout must not kill the proxy; request trailers never reach the
// app; a "#" in the target (or a dot segment with a ";" parameter, raw or escaped) is refused and the app gets
// exactly the path the policy decided on; responses framed two ways (CL + TE, repeated CL, TE not ending in
// chunked) are refused; HTTP/1.0 without Host reaches a strict server (nginx) and HTTP/1.0 keep-alive is kept.
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { SupervisedProcess } from '../../shared-io/process-supervisor.js';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { type RawTarget, firstStatus, oneResponse, rawHttp } from '../helpers/raw-http.js';
import { startNginxApp } from '../helpers/nginx-app.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const EDGE = `spiffe://${TD}/ns/edge/sa/gateway`;
/** Every proxy times requests out after 1 s; the slow apps answer after LATE_MS, well after that. */
const LATE_MS = 2_500;
const LIMITS = 'limits: { requestTimeout: 1s, upstreamIdleTimeout: 30s, maxResponseHeaderBytes: 2048 }\n';

let dir: string;
let cleanup: () => Promise<void>;
const closers: (() => unknown)[] = [];
let api: ProxyProcess;
let web: ProxyProcess;
let edge: ProxyProcess;
let webTls: tls.ConnectionOptions;
let edgeCa: string;
let nginx: SupervisedProcess | undefined;

/** What the apps saw, in arrival order. */
const appSeen: { url: string; version: string; headers: Record<string, unknown>; trailers: Record<string, unknown>; body: string }[] = [];
const rawSeen: string[] = [];
const h2Seen: { path: string; headers: Record<string, unknown>; trailers: Record<string, unknown> }[] = [];
/** The requests the slow apps have answered late, by target (the moment a crashing proxy would die). */
const answeredLate = new Set<string>();

// ---- the apps

/** Answers after LATE_MS, long after every proxy gave up, and records it under `key`. */
function late(key: string, answer: () => void): void {
  setTimeout(() => {
    answer();
    answeredLate.add(key);
  }, LATE_MS);
}

function appHandler(req: IncomingMessage, res: ServerResponse): void {
  let body = '';
  req.setEncoding('latin1');
  req.on('data', (d: string) => {
    body += d;
  });
  req.on('end', () => {
    appSeen.push({ url: req.url ?? '', version: req.httpVersion, headers: req.headers, trailers: req.trailers, body });
    const answer = () => {
      const out = JSON.stringify({ url: req.url, version: req.httpVersion, host: req.headers.host ?? null, trailers: req.trailers, body });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
      res.end(out);
    };
    if (req.url?.startsWith('/v1/slow')) late(req.url, answer);
    else answer();
  });
}

/** Hand-made responses a broken or hostile upstream might send, by the last path segment. */
const CANNED: Readonly<Record<string, string>> = {
  'cl-te': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  'te-cl': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 30\r\n\r\n0\r\n\r\n',
  'two-cl': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 7\r\n\r\nokSMUGL',
  'dup-cl': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok',
  'comma-cl': 'HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok',
  'te-gzip': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxxxx',
  'te-chunked-gzip': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n',
  'http10-te': 'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  'bad-cl': 'HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok',
  // Lines ended with a bare LF: the head never ends in CRLF CRLF (the app keeps the connection open).
  'bare-lf': 'HTTP/1.1 200 OK\nContent-Length: 2\n\nok',
  'bare-lf-line': 'HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 2\r\n',
  // A 101 to a request that asked for no upgrade, the connection kept open.
  'unasked-101': 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n',
  // Status codes outside 100-599 (RFC 9110 section 15), as the HTTP/2 paths refuse them.
  'status-600': 'HTTP/1.1 600 Odd\r\nContent-Length: 2\r\n\r\nok',
  'status-999': 'HTTP/1.1 999 Odd\r\nContent-Length: 2\r\n\r\nok',
};
/** More interim heads than a response may have (MAX_INTERIM_HEADS, 8), and as many as it may. */
const INTERIM: Readonly<Record<string, string>> = {
  'many-1xx': `${'HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n'.repeat(9)}HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok`,
  'eight-1xx': `${'HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n'.repeat(8)}HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok`,
};
/** Answers the app cuts off after the head: the connection closes mid-body, or a later chunk line is broken. */
const TRUNCATED: Readonly<Record<string, string>> = {
  'cut-length': 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\npart',
  'cut-chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\npart\r\n',
  'bad-chunk': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\npart\r\nzz\r\nabc\r\n0\r\n\r\n',
  'bare-lf-chunk': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\npart\r\n3\nabc\r\n0\r\n\r\n',
};
/** Bodiless answers that still name a length: an HTTP/2 client must get them (node:http2 refuses a 204 with one). */
const BODILESS: Readonly<Record<string, string>> = {
  '204-length': 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n',
  '304-length': 'HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n',
  '205-length': 'HTTP/1.1 205 Reset Content\r\nContent-Length: 0\r\n\r\n',
};
/** Canned answers after which the app keeps the connection open: only the proxy's parser can end the wait. */
const HELD = new Set(['bare-lf', 'bare-lf-line', 'unasked-101']);

/** An app that claims a proxy refusal and names a caller: what only a proxy may say. */
const FORGED: Readonly<Record<string, string>> = {
  forge: 'HTTP/1.1 403 Forbidden\r\nX-Tessera-Error: authz_denied\r\nX-Forwarded-Client-Cert: By=spiffe://x/y\r\nContent-Length: 2\r\n\r\nno',
  'forge-103': 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nx-TESSERA-error: authz_denied\r\nX-Forwarded-Client-Cert: By=x\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  'forge-101': 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Tessera-Error: authz_denied\r\nX-Forwarded-Client-Cert: By=x\r\n\r\n',
};

/** Well-framed responses whose heads are just under and over the sidecars' limits.maxResponseHeaderBytes (2048). */
const SIZED: Readonly<Record<string, string>> = {
  'head-1500': `HTTP/1.1 200 OK\r\nx-pad: ${'a'.repeat(1_450)}\r\nContent-Length: 2\r\n\r\nok`,
  'head-3000': `HTTP/1.1 200 OK\r\nx-pad: ${'a'.repeat(2_950)}\r\nContent-Length: 2\r\n\r\nok`,
};

/** A raw HTTP/1.1 upstream: answers each request head with a canned response, or late for /v1/slow. */
function rawUpstream(socket: net.Socket): void {
  let buf = '';
  socket.on('error', () => undefined);
  socket.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
      const head = buf.slice(0, end);
      buf = buf.slice(end + 4);
      rawSeen.push(head);
      const target = head.split(' ')[1] ?? '';
      const last = target.slice(target.lastIndexOf('/') + 1);
      const canned = CANNED[last] ?? SIZED[last] ?? FORGED[last] ?? INTERIM[last] ?? TRUNCATED[last] ?? BODILESS[last];
      if (canned) {
        if (HELD.has(last)) socket.write(canned);
        else socket.end(canned);
        return;
      }
      const reply = (text: string) => socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${text.length}\r\n\r\n${text}`);
      if (target.includes('/v1/slow')) late(target, () => reply('late'));
      else reply('ok');
    }
  });
}

function h2AppHandler(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
  const path = String(headers[':path']);
  let trailers: Record<string, unknown> = {};
  stream.on('trailers', (t) => {
    trailers = t;
  });
  stream.on('error', () => undefined);
  stream.resume();
  stream.on('end', () => {
    h2Seen.push({ path, headers, trailers });
    const grpc = String(headers['content-type'] ?? '').startsWith('application/grpc');
    const answer = () => {
      if (stream.destroyed) return;
      if (grpc) {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(Buffer.from([0, 0, 0, 0, 0])); // one empty message
      } else {
        stream.respond({ ':status': 200, 'content-type': 'application/json' });
        stream.end(JSON.stringify({ path, trailers }));
      }
    };
    if (path.includes('/v1/slow') || path.endsWith('/Slow')) late(path, answer);
    else answer();
  });
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

/** nginx, a strict HTTP server, as an app: it refuses an HTTP/1.1 request with an empty Host. */
async function startNginx(): Promise<number> {
  const app = await startNginxApp(dir, 'nginx', { body: 'nginx $server_protocol $request_uri host=[$http_host]\\n', accessLog: true });
  nginx = app.process;
  return app.port;
}

const policy =
  `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: [${WEB}, ${EDGE}]\n      to: { paths: ["/public/**", "/v1/**", "/echo.v1.Echo/*"] }\n---\n` +
  `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-deny-secret }\nspec:\n  selector: ${API}\n  action: DENY\n  rules:\n    - from: [${WEB}, ${EDGE}]\n      to: { paths: ["/public/secret", "/public/secret/**"] }\n`;

function proxyYaml(name: string, body: string): string {
  return `identity:\n  files: { certFile: ${name}/svid.pem, keyFile: ${name}/key.pem, bundleFile: ${name}/bundle.pem }\n${body}admin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n${LIMITS}`;
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const ca = await TestCa.create({ trustDomain: TD });
  const appPort = await listen(createServer(appHandler));
  const rawPort = await listen(net.createServer(rawUpstream));
  const h2Port = await listen(http2.createServer().on('stream', h2AppHandler) as unknown as net.Server);
  const nginxPort = await startNginx();
  const apiSvid = await writeSvidFiles(ca, API, join(dir, 'api'));
  const webSvid = await writeSvidFiles(ca, WEB, join(dir, 'web'));
  await writeSvidFiles(ca, EDGE, join(dir, 'edge'));
  webTls = { cert: await readFile(webSvid.certFile, 'utf8'), key: await readFile(webSvid.keyFile, 'utf8'), ca: ca.bundlePem() };
  // A peer that presents api's SVID and answers as slowly as any app may: the outbound side's late answer.
  const peerPort = await listen(tls.createServer({ cert: await readFile(apiSvid.certFile, 'utf8'), key: await readFile(apiSvid.keyFile, 'utf8'), ALPNProtocols: ['http/1.1'] }, rawUpstream));
  const site = await TestCa.create({ trustDomain: 'site.test', rootName: 'CN=Site CA, O=Test' });
  const siteCert = await site.mintSvid('spiffe://site.test/edge', { dnsSans: ['localhost'] });
  edgeCa = site.bundlePem();
  await writeFile(join(dir, 'site.pem'), siteCert.chainPem);
  await writeFile(join(dir, 'site.key'), siteCert.keyPem, { mode: 0o600 });
  await mkdir(join(dir, 'policies'));
  await writeFile(join(dir, 'policies', 'api.yaml'), policy);

  const inbound = (name: string, port: number, protocol = 'http') => `  - { name: ${name}, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${port}, protocol: ${protocol} }\n`;
  await writeFile(
    join(dir, 'api.yaml'),
    `${proxyYaml('api', `inbound:\n${inbound('app', appPort)}${inbound('raw', rawPort)}${inbound('nginx', nginxPort)}${inbound('h2', h2Port, 'http2')}${inbound('grpc', h2Port, 'grpc')}`)}authorization: { policiesDir: policies }\n`,
  );
  api = await startProxyProcess(join(dir, 'api.yaml'));
  const outbound = (name: string, port: number, protocol = 'http') => `  - { name: ${name}, listen: 127.0.0.1:0, upstream: 127.0.0.1:${port}, spiffeId: ${API}, protocol: ${protocol} }\n`;
  const a = (n: string) => api.ports.get(`inbound/${n}`)!;
  await writeFile(
    join(dir, 'web.yaml'),
    proxyYaml('web', `outbound:\n${outbound('app', a('app'))}${outbound('raw', a('raw'))}${outbound('nginx', a('nginx'))}${outbound('peer', peerPort)}${outbound('h2', a('h2'), 'http2')}${outbound('grpc', a('grpc'), 'grpc')}`),
  );
  await writeFile(
    join(dir, 'edge.yaml'),
    proxyYaml(
      'edge',
      [
        'edge:',
        '  - name: public',
        '    listen: 127.0.0.1:0',
        '    certFile: site.pem',
        '    keyFile: site.key',
        '    routes:',
        `      - { host: "*", pathPrefix: /, upstream: 127.0.0.1:${a('app')}, spiffeId: ${API} }`,
        `      - { host: "*", pathPrefix: /raw, upstream: 127.0.0.1:${rawPort}, unsafePlaintext: true }`,
        `      - { host: "*", pathPrefix: /ngx, upstream: 127.0.0.1:${nginxPort}, unsafePlaintext: true }`,
        '',
      ].join('\n'),
    ),
  );
  [web, edge] = await Promise.all([startProxyProcess(join(dir, 'web.yaml')), startProxyProcess(join(dir, 'edge.yaml'))]);
}, 45_000);

afterAll(async () => {
  await Promise.all([web?.stop(), edge?.stop(), api?.stop()]);
  await nginx?.stop({ graceMs: 1_000 });
  for (const c of closers) c();
  await cleanup?.();
});

// ---- clients

const webOut = (n: string): RawTarget => ({ port: web.ports.get(`outbound/${n}`)! });
const apiIn = (n: string): RawTarget => ({ port: api.ports.get(`inbound/${n}`)!, tls: webTls });
const edgeIn = (): RawTarget => ({ port: edge.ports.get('edge/public')!, tls: { ca: edgeCa, servername: 'localhost', ALPNProtocols: ['http/1.1'] } });

/** Every HTTP/1.1 listener kind, as a raw client reaches it. */
const H1: readonly [string, () => RawTarget][] = [
  ['sidecar outbound', () => webOut('app')],
  ['sidecar inbound', () => apiIn('app')],
  ['edge', edgeIn],
];

function get(target: RawTarget, path: string, extra = ''): Promise<{ status: number; text: string }> {
  return rawHttp(target, [`GET ${path} HTTP/1.1\r\nHost: app.test\r\n${extra}\r\n`], { until: oneResponse }).then((r) => ({ status: firstStatus(r.text), text: r.text }));
}

function body(text: string): string {
  return text.slice(text.indexOf('\r\n\r\n') + 4);
}

interface H2Reply {
  readonly status: number;
  readonly headers: http2.IncomingHttpHeaders;
  readonly trailers: http2.IncomingHttpHeaders;
  readonly body: string;
  /** The RST_STREAM code the stream closed with (0: a clean end). */
  readonly rstCode: number;
}

/** One HTTP/2 request with an exact :path (Node's client sends it as given), optional request trailers. */
function h2(where: 'web-h2' | 'web-grpc' | 'api-h2' | 'edge', path: string, opts: { grpc?: boolean; trailers?: Record<string, string>; cancelAfterMs?: number; method?: string; headers?: Record<string, string> } = {}): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const session =
      where === 'web-h2' || where === 'web-grpc' ? http2.connect(`http://127.0.0.1:${web.ports.get(where === 'web-h2' ? 'outbound/h2' : 'outbound/grpc')}`)
      : where === 'api-h2' ? http2.connect(`https://127.0.0.1:${api.ports.get('inbound/h2')}`, { ...webTls, checkServerIdentity: () => undefined })
      : http2.connect(`https://localhost:${edge.ports.get('edge/public')}`, { ca: edgeCa });
    session.on('error', reject);
    const headers: http2.OutgoingHttpHeaders = { ':method': opts.method ?? 'POST', ':path': path, ...(opts.grpc ? { 'content-type': 'application/grpc', te: 'trailers' } : {}), ...opts.headers };
    const req = session.request(headers, opts.trailers ? { waitForTrailers: true } : {});
    if (opts.trailers) req.on('wantTrailers', () => req.sendTrailers(opts.trailers!));
    // A gRPC client's deadline: it cancels the call (RST_STREAM CANCEL) when it passes.
    if (opts.cancelAfterMs) setTimeout(() => req.close(http2.constants.NGHTTP2_CANCEL), opts.cancelAfterMs);
    let status = 0;
    let resHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    let text = '';
    req.on('response', (h) => {
      status = Number(h[':status']);
      resHeaders = h;
    });
    req.on('trailers', (t) => {
      trailers = t;
    });
    req.setEncoding('latin1');
    req.on('data', (d: string) => {
      text += d;
    });
    req.on('close', () => {
      session.close();
      resolve({ status, headers: resHeaders, trailers, body: text, rstCode: req.rstCode ?? 0 });
    });
    req.on('error', () => undefined);
    req.end(opts.grpc ? Buffer.from([0, 0, 0, 0, 0]) : 'x');
  });
}

function alive(...procs: ProxyProcess[]): void {
  for (const p of procs) expect(p.child.exitCode, `${p.stderr()}`).toBeNull();
}

// ---- 1. a late answer after the request timeout

// Concurrent: each case waits LATE_MS for its own late answer (keyed by its target).
describe.concurrent('a slow app answering after the request timeout', () => {
  /** Waits for the late answer to `key` to have been sent, and a little for it to arrive. */
  async function afterLateAnswer(key: string): Promise<void> {
    await until(`the slow app answered ${key} late`, () => answeredLate.has(key), LATE_MS + 5_000, 50);
    await new Promise((r) => setTimeout(r, 300));
  }

  test.each([
    ['sidecar outbound (the upstream peer answers late)', () => webOut('peer'), () => [web]],
    ['sidecar inbound (the app answers late)', () => apiIn('raw'), () => [api]],
    ['edge (a plaintext upstream answers late)', edgeIn, () => [edge]],
  ])('HTTP/1.1 %s: 504, the late bytes are discarded, the proxy stays up and serves the next request', async (name, target, procs) => {
    const prefix = target === edgeIn ? '/raw' : '';
    const path = `${prefix}/v1/slow-${name.split(' ')[1]}`;
    const r = await get(target(), path);
    expect(r.status).toBe(504);
    expect(r.text).toContain('request_timeout');
    await afterLateAnswer(path);
    alive(...procs());
    const next = await get(target(), `${prefix}/v1/next`);
    expect(next.status).toBe(200);
    expect(body(next.text)).toBe('ok'); // not the late "late" of the timed-out exchange
  });

  test('HTTP/1.1: a client that leaves while its request waits does not leave a trap for the late answer', async () => {
    const targets: [RawTarget, string][] = [
      [webOut('peer'), ''],
      [apiIn('raw'), ''],
      [edgeIn(), '/raw'],
    ];
    for (const [i, [t, prefix]] of targets.entries()) {
      const leave = new AbortController();
      const gone = rawHttp(t, [`GET ${prefix}/v1/slow-leaving-${i} HTTP/1.1\r\nHost: a\r\n\r\n`], { signal: leave.signal });
      await until('the request reached the app', () => rawSeen.some((h) => h.includes(`/v1/slow-leaving-${i} `)), 3_000, 10);
      leave.abort();
      await gone;
    }
    for (const [i, [, prefix]] of targets.entries()) await afterLateAnswer(`${prefix}/v1/slow-leaving-${i}`);
    alive(web, api, edge);
    for (const [t, prefix] of targets) expect((await get(t, `${prefix}/v1/next`)).status).toBe(200);
  });

  test.each([
    ['HTTP/2 sidecar inbound', 'api-h2', '/v1/slow-h2-in', false],
    ['HTTP/2 sidecar outbound', 'web-h2', '/v1/slow-h2-out', false],
    ['gRPC sidecar outbound → inbound, cancelled at the client deadline', 'web-grpc', '/echo.v1.Echo/Slow', true],
    ['HTTP/2 edge', 'edge', '/v1/slow-h2-edge', false],
  ] as const)('%s: timed out (504) or cancelled, the proxies stay up and serve the next request', async (_name, where, path, grpc) => {
    const r = await h2(where, path, grpc ? { grpc, cancelAfterMs: 1_000 } : {});
    expect(r.status).toBe(grpc ? 0 : 504); // gRPC: no proxy timer, the client's own deadline cancels the call
    await afterLateAnswer(path);
    alive(web, api, edge);
    const next = await h2(where, grpc ? '/echo.v1.Echo/Next' : '/v1/next', { grpc });
    expect(next.status).toBe(200);
    if (grpc) expect(next.trailers['grpc-status']).toBe('0');
  });
});

// ---- 2. request trailers

describe('request trailers never reach the app', () => {
  const forged = 'By=spiffe://example.org/forged;URI=spiffe://example.org/ns/default/sa/admin;Hash=00';
  const chunked = (path: string) => [
    `POST ${path} HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`,
    `0\r\nX-Forwarded-Client-Cert: ${forged}\r\nTraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\nX-Other: 1\r\n\r\n`,
  ];

  test.each(H1)('HTTP/1.1 %s: the chunked body arrives whole, with an empty trailer section', async (name, target) => {
    const path = `/v1/trailers-${name.replace(/ /g, '-')}`;
    const r = await rawHttp(target(), chunked(path), { until: oneResponse });
    expect(firstStatus(r.text)).toBe(200);
    const seen = appSeen.find((s) => s.url === path)!;
    expect(seen.body).toBe('hello');
    expect(seen.trailers).toEqual({});
    expect(JSON.stringify(seen.headers)).not.toContain('forged');
  });

  // Trailers are header fields that come late: past limits.maxHeaderBytes (16 KiB here) they are refused as an
  // oversized head is, 431, not as a malformed body (400).
  test.each(H1)('HTTP/1.1 %s: a trailer section over limits.maxHeaderBytes is a 431; the app gets no whole request', async (name, target) => {
    const path = `/v1/big-trailers-${name.replace(/ /g, '-')}`;
    const trailers = Array.from({ length: 800 }, (_, i) => `X-T${i}: ${'v'.repeat(20)}\r\n`).join('');
    const r = await rawHttp(target(), [`POST ${path} HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`, `0\r\n${trailers}\r\n`], { until: oneResponse });
    expect(firstStatus(r.text)).toBe(431);
    expect(r.text).toMatch(/x-tessera-error: header_too_large/i);
    expect(appSeen.find((s) => s.url === path)).toBeUndefined();
    alive(web, api, edge);
  });

  test.each([
    ['HTTP/2 via both sidecars', 'web-h2', false],
    ['gRPC via both sidecars', 'web-grpc', true],
    ['HTTP/2 at the edge', 'edge', false],
  ] as const)('%s: request trailers are not forwarded', async (_name, where, grpc) => {
    const path = grpc ? '/echo.v1.Echo/Trailers' : `/v1/h2-trailers-${where}`;
    const r = await h2(where, path, { grpc, trailers: { 'x-forwarded-client-cert': forged, 'x-other': '1' } });
    expect(r.status).toBe(200);
    const seen = where === 'edge' ? appSeen.find((s) => s.url === path) : h2Seen.find((s) => s.path === path);
    expect(seen).toBeDefined();
    expect(JSON.stringify(seen!.trailers)).not.toContain('forged');
    expect(JSON.stringify(seen!.headers)).not.toContain('forged');
  });
});

/**
 * Sends `h1Lines` (and an app field of the caller's own) through every HTTP/1.1 entry and `h2Headers` through the
 * HTTP/2 and gRPC ones: `leaked` lists what the app saw that it must not have.
 */
function noneReachesTheApp(slug: string, h1Lines: readonly string[], h2Headers: Record<string, string>, leaked: (headers: Record<string, unknown>) => unknown[]): void {
  test.each(H1)('HTTP/1.1 %s: none reaches the app; the caller\'s own underscore field does', async (name, target) => {
    const path = `/v1/${slug}-${name.replace(/ /g, '-')}`;
    const r = await get(target(), path, `${h1Lines.map((l) => `${l}\r\n`).join('')}X_App_Field: kept\r\n`);
    expect(r.status).toBe(200);
    const seen = appSeen.find((s) => s.url === path)!;
    expect(leaked(seen.headers)).toEqual([]);
    expect(seen.headers['x_app_field']).toBe('kept');
  });

  test.each([
    ['HTTP/2 via both sidecars', 'web-h2', false],
    ['gRPC via both sidecars', 'web-grpc', true],
    ['HTTP/2 at the edge', 'edge', false],
  ] as const)('%s: none reaches the app', async (_name, where, grpc) => {
    const path = grpc ? `/echo.v1.Echo/${slug[0]!.toUpperCase()}${slug.slice(1)}` : `/v1/h2-${slug}-${where}`;
    const r = await h2(where, path, { grpc, headers: h2Headers });
    expect(r.status).toBe(200);
    const seen = where === 'edge' ? appSeen.find((s) => s.url === path) : h2Seen.find((s) => s.path === path);
    expect(seen).toBeDefined();
    expect(leaked(seen!.headers)).toEqual([]);
  });
}

describe('underscore spellings of the fields only a proxy may set', () => {
  // CGI-style apps (WSGI, PHP) read x_forwarded_client_cert as HTTP_X_FORWARDED_CLIENT_CERT, the real field.
  const forged = 'By=spiffe://example.org/forged;URI=spiffe://example.org/ns/ops/sa/admin;Hash=00';
  // lighttpd's CGI, FastCGI and SCGI fold every character but a letter or digit into `_`: `.`, `*`, `~`, `|` too.
  const spellings = ['X_Forwarded_Client_Cert', 'x-forwarded_client-cert', 'X_TESSERA_ERROR', 'x_forwarded_for', 'TraceParent_', 'x.forwarded.client.cert', 'x*forwarded~client|cert', 'x.tessera.error'];
  /** Header names the app saw that read as a proxy-owned field once folded, with a forged value. */
  const forgedFields = (headers: Record<string, unknown>) => Object.entries(headers).filter(([k, v]) => ['x-forwarded-client-cert', 'x-tessera-error'].includes(k.toLowerCase().replace(/[^a-z0-9]/g, '-')) && JSON.stringify(v).includes('forged'));
  const h2Spellings = { x_forwarded_client_cert: forged, 'x-forwarded_client-cert': forged, x_tessera_error: forged, 'x.forwarded.client.cert': forged, 'x*tessera~error': forged };
  noneReachesTheApp('underscore', spellings.map((n) => `${n}: ${forged}`), h2Spellings, forgedFields);
});

describe('path and method overrides: the app acts on the request the policy decided on', () => {
  // gunicorn splits the path by a SCRIPT_NAME header from 127.0.0.1 (where the sidecar connects from); IIS, Symfony and
  // Zend take X-Original-URL / X-Rewrite-URL for the path; method-override middleware X-HTTP-Method-Override.
  const overrides = ['SCRIPT_NAME: /v1', 'script-name: /v1', 'X-Script-Name: /v1', 'X-Original-URL: /admin', 'x_rewrite_url: /admin', 'X-WAWS-Unencoded-URL: /admin', 'X-HTTP-Method-Override: DELETE', 'x-middleware-subrequest: middleware'];
  const asH2 = Object.fromEntries(overrides.map((h) => [h.slice(0, h.indexOf(':')).toLowerCase(), h.slice(h.indexOf(':') + 2)]));
  noneReachesTheApp('overrides', overrides, asH2, (headers) => Object.keys(headers).filter((k) => /script|original|rewrite|waws|override|middleware/i.test(k)));
});

// ---- 3. fragments and what the app receives

describe('request targets: the app receives exactly the path the policy decided on', () => {
  const hostile = ['/public/x#/../../admin', '/public/x?q=1#/../admin', '/public/%2e%2e#/admin'];

  test.each(H1)('HTTP/1.1 %s: a target with "#" is refused with 400 bad_request and never forwarded', async (_name, target) => {
    for (const path of hostile) {
      const r = await get(target(), path);
      expect(r.status, path).toBe(400);
      expect(r.text).toContain('bad_request');
    }
    expect(appSeen.filter((s) => s.url.includes('#'))).toEqual([]);
  });

  test.each([
    ['HTTP/2 sidecar outbound', 'web-h2', false],
    ['HTTP/2 sidecar inbound', 'api-h2', false],
    ['gRPC sidecar outbound', 'web-grpc', true],
    ['HTTP/2 edge', 'edge', false],
  ] as const)('%s: a :path with "#" is refused (400 / gRPC INTERNAL) and never forwarded', async (_name, where, grpc) => {
    for (const path of grpc ? ['/echo.v1.Echo/Unary#/../x'] : hostile) {
      const r = await h2(where, path, { grpc });
      if (grpc) {
        expect(r.headers['grpc-status']).toBe('13');
        expect(r.headers['grpc-message']).toBe('bad_request');
      } else {
        expect(r.status, path).toBe(400);
        expect(r.body).toContain('bad_request');
      }
    }
    expect(h2Seen.filter((s) => s.path.includes('#'))).toEqual([]);
    expect(appSeen.filter((s) => s.url.includes('#'))).toEqual([]);
  });

  // An escaped "?" or "#" is forwarded as written ("/public/c%23" is a tag), but an app that decodes the target and
  // parses it again reads "/public/secret%23x" as "/public/secret": a DENY rule sees that reading too.
  const escapedDelimiters = ['/public/secret%23x', '/public/secret%3F', '/public/secret%3fdebug=1', '/public/secret%23/x'];

  test.each(H1)('HTTP/1.1 %s: a path whose part before an escaped "?" or "#" a DENY rule names is refused (403)', async (_name, target) => {
    for (const path of escapedDelimiters) expect((await get(target(), path)).status, path).toBe(403);
    const tag = await get(target(), '/public/c%23');
    expect(tag.status).toBe(200);
    expect(JSON.parse(body(tag.text)).url).toBe('/public/c%23');
  });

  test.each([
    ['HTTP/2 sidecar outbound', 'web-h2'],
    ['HTTP/2 sidecar inbound', 'api-h2'],
    ['HTTP/2 edge', 'edge'],
  ] as const)('%s: a :path whose part before an escaped "?" or "#" a DENY rule names is refused (403)', async (_name, where) => {
    for (const path of escapedDelimiters) expect((await h2(where, path)).status, path).toBe(403);
    expect((await h2(where, '/public/c%23')).status).toBe(200);
  });

  // Methods are case-sensitive, apps are not all so: "delete" would pass a rule about DELETE to an app that folds it.
  const lowerMethods = ['get', 'Get', 'dELETE', 'post', 'PURGe'];

  test.each(H1)('HTTP/1.1 %s: a method with a lower-case letter is refused with 400 bad_request and never forwarded', async (_name, target) => {
    for (const method of lowerMethods) {
      const r = await rawHttp(target(), [`${method} /public/x HTTP/1.1\r\nHost: app.test\r\n\r\n`], { until: oneResponse });
      expect(firstStatus(r.text), method).toBe(400);
    }
    // An upper-case extension method is a method like any other (the app answers it).
    const purge = await rawHttp(target(), ['PURGE /public/x HTTP/1.1\r\nHost: app.test\r\n\r\n'], { until: oneResponse });
    expect(firstStatus(purge.text)).not.toBe(400);
  });

  test.each([
    ['HTTP/2 sidecar outbound', 'web-h2'],
    ['HTTP/2 sidecar inbound', 'api-h2'],
    ['HTTP/2 edge', 'edge'],
  ] as const)('%s: a :method with a lower-case letter is refused (400) and never forwarded', async (_name, where) => {
    for (const method of lowerMethods) expect((await h2(where, '/public/x', { method })).status, method).toBe(400);
    expect(h2Seen.filter((s) => /[a-z]/.test(String(s.headers[':method'])))).toEqual([]);
  });

  const messy = '/public/a/../b//c/./%7e/%3c?q=/../x%2F';
  const clean = '/public/b/c/~/%3C?q=/../x%2F';

  test.each(H1)('HTTP/1.1 %s: the app receives the normalized path and the query byte for byte', async (_name, target) => {
    const r = await get(target(), messy);
    expect(firstStatus(r.text)).toBe(200);
    expect(JSON.parse(body(r.text)).url).toBe(clean);
  });

  test.each([
    ['HTTP/2 sidecar outbound → inbound', 'web-h2'],
    ['HTTP/2 sidecar inbound', 'api-h2'],
    ['HTTP/2 edge', 'edge'],
  ] as const)('%s: the app receives the normalized :path', async (_name, where) => {
    const r = await h2(where, messy);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).path ?? JSON.parse(r.body).url).toBe(clean);
  });

  test('real clients: curl --path-as-is (HTTP/1.1, HTTP/2) and nghttp reach the app with the normalized path', async () => {
    const run = (cmd: string, args: string[]) =>
      new Promise<string>((resolve, reject) => execFile(cmd, args, { timeout: 10_000 }, (e, stdout, stderr) => (e ? reject(new Error(`${cmd}: ${e.message}\n${stderr}`)) : resolve(stdout))));
    const edgeUrl = `https://localhost:${edge.ports.get('edge/public')}${messy}`;
    await writeFile(join(dir, 'site-ca.pem'), edgeCa);
    const curlOut = (extra: string[], url: string) => run('curl', ['-sS', '--path-as-is', '--cacert', join(dir, 'site-ca.pem'), ...extra, url]);
    expect(JSON.parse(await curlOut(['--http1.1'], edgeUrl)).url).toBe(clean);
    expect(JSON.parse(await curlOut(['--http2'], edgeUrl)).url).toBe(clean);
    expect(JSON.parse(await curlOut([], `http://127.0.0.1:${web.ports.get('outbound/app')}${messy}`)).url).toBe(clean);
    expect(JSON.parse(await run('nghttp', [edgeUrl])).url).toBe(clean);
  });

  test.each(H1)('HTTP/1.1 %s: targets the policy and a servlet router would read differently are refused', async (name, target) => {
    for (const path of ['/public/..;/admin', '/public/.;/v1', '/public/x%00/../admin', '*', 'http://app.test/public/x']) {
      const r = await get(target(), path);
      // The sidecar inbound judges them invalid_path (403); the edge refuses the target itself (400).
      expect([400, 403], `${name} ${path}`).toContain(r.status);
    }
    expect(appSeen.filter((s) => s.url.includes(';') || s.url.includes('%00') || s.url === '*' || s.url.startsWith('http:'))).toEqual([]);
  });

  // The same segments with the ";" escaped, in every case mix (audit 53a F4): "/public/../admin" to an app that
  // percent-decodes before it strips parameters. Were forwarded as "/public/..%3B/admin"; now refused as "..;" is.
  const escapedParams = ['/public/..%3B/admin', '/public/..%3b/admin', '/public/%2e%2e%3b/admin', '/public/%2E.%3B/admin', '/public/.%2e%3Bx=1/admin', '/public/.%3B/v1', '/public/%2E%3b/v1', '/public/%3Bx/../admin'];
  const tesseraError = (text: string) => /^x-tessera-error: (.*)$/im.exec(text.slice(0, text.indexOf('\r\n\r\n')))?.[1]?.trim();

  test.each(H1)('HTTP/1.1 %s: a dot or empty segment with an escaped ";" is refused as "..;" is', async (name, target) => {
    const plain = await get(target(), '/public/..;/admin');
    expect([400, 403], name).toContain(plain.status);
    for (const path of escapedParams) {
      const r = await get(target(), path);
      expect({ status: r.status, error: tesseraError(r.text) }, `${name} ${path}`).toEqual({ status: plain.status, error: tesseraError(plain.text) });
    }
    expect(appSeen.filter((s) => /%3b/i.test(s.url))).toEqual([]);
  });

  test.each([
    ['HTTP/2 sidecar outbound → inbound', 'web-h2'],
    ['HTTP/2 sidecar inbound', 'api-h2'],
    ['HTTP/2 edge', 'edge'],
  ] as const)('%s: a dot or empty segment with an escaped ";" is refused as "..;" is', async (name, where) => {
    const plain = await h2(where, '/public/..;/admin');
    expect([400, 403], name).toContain(plain.status);
    for (const path of escapedParams) {
      const r = await h2(where, path);
      expect({ status: r.status, error: r.headers['x-tessera-error'] }, `${name} ${path}`).toEqual({ status: plain.status, error: plain.headers['x-tessera-error'] });
    }
    expect(h2Seen.filter((s) => /%3b/i.test(s.path))).toEqual([]);
    expect(appSeen.filter((s) => /%3b/i.test(s.url))).toEqual([]);
  });

  test('curl --path-as-is (HTTP/1.1, HTTP/2) at the edge: "..%3B" is a 400, as "..;" is', async () => {
    await writeFile(join(dir, 'site-ca.pem'), edgeCa);
    const status = (version: string, path: string) =>
      new Promise<string>((resolve, reject) =>
        execFile('curl', ['-sS', '--path-as-is', version, '-o', '/dev/null', '-w', '%{http_code}', '--cacert', join(dir, 'site-ca.pem'), `https://localhost:${edge.ports.get('edge/public')}${path}`], { timeout: 10_000 }, (e, out, err) => (e ? reject(new Error(`curl: ${e.message}\n${err}`)) : resolve(out))),
      );
    for (const version of ['--http1.1', '--http2']) {
      expect(await status(version, '/public/..;/admin'), version).toBe('400');
      expect(await status(version, '/public/..%3B/admin'), version).toBe('400');
      expect(await status(version, '/public/%2e%2e%3b/admin'), version).toBe('400');
    }
  });
});

// ---- 4. responses framed two ways

describe("an app's x-tessera-error and x-forwarded-client-cert never reach the client", () => {
  test.each([
    ['sidecar outbound → inbound', () => webOut('raw'), ''],
    ['sidecar inbound', () => apiIn('raw'), ''],
    ['edge, plain route', edgeIn, '/raw'],
  ])('HTTP/1.1 %s', async (name, target, prefix) => {
    const r = await rawHttp(target(), [`GET ${prefix}/v1/forge HTTP/1.1\r\nHost: app.test\r\n\r\n`], { until: oneResponse });
    expect(firstStatus(r.text), name).toBe(403);
    const head = r.text.slice(0, r.text.indexOf('\r\n\r\n')).toLowerCase();
    expect(head, name).not.toContain('x-tessera-error');
    expect(head, name).not.toContain('x-forwarded-client-cert');
    // In an interim 103 before the final answer, and in the 101 of an upgrade (its Upgrade and Connection kept).
    const early = await rawHttp(target(), [`GET ${prefix}/v1/forge-103 HTTP/1.1\r\nHost: app.test\r\n\r\n`], { until: (t) => t.includes('\r\n\r\nok') });
    expect(early.text, name).toMatch(/^HTTP\/1\.1 103 /);
    expect(early.text.toLowerCase(), name).toContain('link: </a.css>');
    expect(early.text.toLowerCase(), name).not.toMatch(/x-tessera-error|x-forwarded-client-cert/);
    const up = await rawHttp(target(), [`GET ${prefix}/v1/forge-101 HTTP/1.1\r\nHost: app.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`], { until: (t) => t.includes('\r\n\r\n') });
    expect(up.text, name).toMatch(/^HTTP\/1\.1 101 /);
    expect(up.text.toLowerCase(), name).toMatch(/upgrade: websocket/);
    expect(up.text.toLowerCase(), name).not.toMatch(/x-tessera-error|x-forwarded-client-cert/);
  });

  test('HTTP/2 client at the edge, plain HTTP/1.1 route: an answer the app cuts off or breaks after the head is a reset, never a clean end', async () => {
    for (const c of Object.keys(TRUNCATED)) {
      const r = await h2('edge', `/raw/v1/cut/${c}`, { method: 'GET' });
      expect(r.status, c).toBe(200);
      expect(r.rstCode, `${c}: ${r.body}`).toBe(http2.constants.NGHTTP2_INTERNAL_ERROR);
    }
    alive(edge);
  });

  test('HTTP/2 client at the edge, plain HTTP/1.1 route: a 9th interim head is a 502; a 204 or 304 naming a length still reaches the client', async () => {
    expect((await h2('edge', '/raw/v1/interim/eight-1xx', { method: 'GET' })).status).toBe(200);
    const nine = await h2('edge', '/raw/v1/interim/many-1xx', { method: 'GET' });
    expect(nine.status).toBe(502);
    expect(nine.headers['x-tessera-error']).toBe('bad_upstream_response');
    const upgraded = await h2('edge', '/raw/v1/smuggle/unasked-101', { method: 'GET' });
    expect([upgraded.status, upgraded.headers['x-tessera-error']]).toEqual([502, 'bad_upstream_response']);
    for (const c of Object.keys(BODILESS)) {
      const r = await h2('edge', `/raw/v1/bodiless/${c}`, { method: 'GET' });
      expect([r.status, r.rstCode], c).toEqual([Number(c.slice(0, 3)), 0]);
    }
    alive(edge);
  });

  test('HTTP/2 client at the edge, plain HTTP/1.1 route', async () => {
    const r = await h2('edge', '/raw/v1/forge', { method: 'GET' });
    expect(r.status).toBe(403);
    expect(r.headers['x-tessera-error']).toBeUndefined();
    expect(r.headers['x-forwarded-client-cert']).toBeUndefined();
  });
});

describe('upstream responses with ambiguous framing', () => {
  const cases = Object.keys(CANNED);

  test.each([
    ['sidecar outbound → inbound', () => webOut('raw'), ''],
    ['sidecar inbound', () => apiIn('raw'), ''],
    ['edge', edgeIn, '/raw'],
  ])('%s: every case is answered 502, never forwarded with both lengths', async (name, target, prefix) => {
    for (const c of cases) {
      const r = await rawHttp(target(), [`GET ${prefix}/v1/smuggle/${c} HTTP/1.1\r\nHost: app.test\r\n\r\n`], { until: oneResponse, capMs: 4_000 });
      expect(firstStatus(r.text), `${name}: ${c}\n${r.text}`).toBe(502);
      // 502 bad_upstream_response, not the head deadline's 504 request_timeout.
      expect(r.text.toLowerCase(), `${name}: ${c}`).toContain('x-tessera-error: bad_upstream_response');
      const head = r.text.slice(0, r.text.indexOf('\r\n\r\n')).toLowerCase();
      expect(head.includes('transfer-encoding') && head.includes('content-length'), c).toBe(false);
      expect(r.text).not.toContain('SMUGL');
    }
    alive(web, api, edge);
  });
});

describe('upstream interim heads are bounded', () => {
  test.each([
    ['sidecar outbound → inbound', () => webOut('raw'), ''],
    ['sidecar inbound', () => apiIn('raw'), ''],
    ['edge', edgeIn, '/raw'],
  ])('%s: 8 interim heads pass before the answer; a 9th is a 502 bad_upstream_response', async (name, target, prefix) => {
    const final = (t: string) => /\r\nHTTP\/1\.1 [25]\d\d [^\r]*\r\n[\s\S]*\r\n\r\n/.test(t) && oneResponse(t.slice(t.lastIndexOf('HTTP/1.1 ')));
    const eight = await rawHttp(target(), [`GET ${prefix}/v1/interim/eight-1xx HTTP/1.1\r\nHost: app.test\r\n\r\n`], { until: final, capMs: 4_000 });
    expect(eight.text.match(/^HTTP\/1\.1 103 /gm)?.length, name).toBe(8);
    expect(eight.text, name).toMatch(/HTTP\/1\.1 200 OK[\s\S]*\r\n\r\nok$/);
    const nine = await rawHttp(target(), [`GET ${prefix}/v1/interim/many-1xx HTTP/1.1\r\nHost: app.test\r\n\r\n`], { until: final, capMs: 4_000 });
    expect(nine.text, name).toMatch(/HTTP\/1\.1 502 [\s\S]*x-tessera-error: bad_upstream_response/i);
    expect(nine.text, name).not.toContain('\r\n\r\nok');
    alive(web, api, edge);
  });
});

describe('upstream response heads are bounded by limits.maxResponseHeaderBytes', () => {
  test.each([
    ['sidecar outbound → inbound', () => webOut('raw')],
    ['sidecar inbound', () => apiIn('raw')],
  ])('%s: a head under the configured bound is forwarded, one over it is answered 502', async (name, target) => {
    const get = async (c: string) => firstStatus((await rawHttp(target(), [`GET /v1/sized/${c} HTTP/1.1\r\nHost: app.test\r\n\r\n`], { until: oneResponse, capMs: 4_000 })).text);
    expect(await get('head-1500'), name).toBe(200);
    expect(await get('head-3000'), name).toBe(502);
    alive(web, api);
  });
});

// ---- 5. HTTP/1.0

describe('HTTP/1.0 requests', () => {
  test.each([
    ['sidecar outbound → inbound', () => webOut('nginx'), ''],
    ['sidecar inbound', () => apiIn('nginx'), ''],
    ['edge', edgeIn, '/ngx'],
  ])('%s: without Host, a strict server (nginx) answers 200', async (_name, target, prefix) => {
    const r = await rawHttp(target(), [`GET ${prefix}/v1/h10 HTTP/1.0\r\n\r\n`], { capMs: 4_000 });
    expect(firstStatus(r.text), r.text).toBe(200);
    expect(body(r.text)).toMatch(new RegExp(`^nginx HTTP/1\\.[01] ${prefix}/v1/h10 host=`));
    expect(r.closedByPeer).toBe(true); // no keep-alive asked for: the connection ends with the response
  });

  test.each(H1)('%s: HTTP/1.0 keep-alive is kept, and said so in the response', async (_name, target) => {
    const req = (n: number) => `GET /v1/ka-${n} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n`;
    const r = await rawHttp(target(), [req(1), 300, req(2)], { until: (t) => t.split('HTTP/1.1 200').length === 3 && oneResponse(t.slice(t.lastIndexOf('HTTP/1.1 200'))), capMs: 4_000 });
    const responses = r.text.split(/(?=HTTP\/1\.1 )/);
    expect(responses).toHaveLength(2);
    for (const res of responses) expect(res.toLowerCase()).toContain('connection: keep-alive');
    expect(JSON.parse(body(responses[1]!)).url).toBe('/v1/ka-2');
  });
});
