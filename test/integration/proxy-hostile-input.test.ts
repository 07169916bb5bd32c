// Hostile and unusual clients against real `tessera proxy` processes (web's outbound sidecar → mTLS → api's
// inbound sidecar → app) with small limits so timeouts fire fast: slowloris, stalled TLS handshakes, garbage
// floods, header limits, request smuggling, pipelining, HTTP/1.0, 100-continue, cut responses, aborted clients
// and a SIGTERM drain. The app parses leniently (insecureHTTPParser) on purpose: a proxy must protect apps
// that accept sloppy framing, not rely on their strictness.
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { Agent, type IncomingMessage, type ServerResponse, createServer, request } from 'node:http';
import * as net from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, writeSvidFiles, tlsOptionsOf } from '../helpers/proxy-process.js';
import { rawHttp } from '../helpers/raw-http.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const LIMITS = 'limits: { headersTimeout: 500ms, handshakeTimeout: 500ms, idleTimeout: 1s, requestTimeout: 5s, maxHeaders: 20, drainTimeout: 5s }\n';

let dir: string;
let cleanup: () => Promise<void>;
let app: ReturnType<typeof createServer>;
let appPort: number;
/** Every request target the app has seen, in arrival order. */
const seen: string[] = [];
/** Every request target whose answer the app has finished writing. */
const answered: string[] = [];
let apiProxy: ProxyProcess;
let webProxy: ProxyProcess;
let apiInbound: number;
let webOutbound: number;
let webTls: { cert: string; key: string; ca: string };

function appHandler(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://app');
  seen.push(req.url ?? '');
  const reply = (bodyLength: number) => {
    const body = JSON.stringify({ method: req.method, path: req.url, bodyLength, httpVersion: req.httpVersion });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body, () => answered.push(req.url ?? ''));
  };
  if (url.pathname === '/v1/early') {
    res.writeHead(200, { 'content-length': 5 });
    res.end('early'); // answers before reading the request body
    return;
  }
  if (url.pathname === '/v1/cut') {
    res.writeHead(200, { 'content-length': 100_000 });
    res.write(Buffer.alloc(1_000, 'c'));
    setTimeout(() => res.socket?.destroy(), 20);
    return;
  }
  if (url.pathname === '/v1/tail') {
    // The last 64 KiB arrive as one read at the inbound proxy, whose write of it to its TLS client fills the
    // socket buffer: the pooled app connection is paused exactly when the exchange ends.
    res.writeHead(200, { 'content-length': 131_072 });
    res.write(Buffer.alloc(65_536, 'a'));
    setTimeout(() => res.end(Buffer.alloc(65_536, 'z')), 50);
    return;
  }
  if (url.pathname === '/v1/big') {
    const n = Number(url.searchParams.get('n'));
    res.writeHead(200, { 'content-length': n });
    res.end(Buffer.alloc(n, 'b'));
    return;
  }
  let n = 0;
  req.on('data', (d: Buffer) => {
    n += d.length;
  });
  req.on('end', () => {
    const delay = url.pathname === '/v1/slow' ? Number(url.searchParams.get('ms')) : 0;
    if (delay > 0) setTimeout(() => reply(n), delay);
    else reply(n);
  });
}

async function metrics(proxy: ProxyProcess): Promise<string> {
  return (await fetch(`http://127.0.0.1:${proxy.admin}/metrics`)).text();
}

function metricValue(text: string, name: string, labels: Record<string, string>): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) total += Number(line.split(' ').pop());
  }
  return total;
}

async function metricDelta(proxy: ProxyProcess, name: string, labels: Record<string, string>, fn: () => Promise<void>): Promise<number> {
  const before = metricValue(await metrics(proxy), name, labels);
  await fn();
  return metricValue(await metrics(proxy), name, labels) - before;
}

interface RawResult {
  readonly data: string;
  /** Milliseconds from connect until the proxy closed the connection (or the cap). */
  readonly closedAfterMs: number;
  readonly closed: boolean;
}

/**
 * A raw client: plaintext or mTLS; writes `chunks` (strings, or numbers = pause in ms), then reads until the
 * peer closes or `capMs` passes. Writing stops as soon as the peer closes.
 */
async function raw(port: number, chunks: readonly (string | number)[], opts: { mtls?: boolean; capMs?: number; endAfterWrite?: boolean; doneWhen?: (data: string) => boolean } = {}): Promise<RawResult> {
  const r = await rawHttp({ port, ...(opts.mtls ? { tls: webTls } : {}) }, chunks, { capMs: opts.capMs ?? 5_000, ...(opts.doneWhen ? { until: opts.doneWhen } : {}), ...(opts.endAfterWrite ? { endAfterWrite: true } : {}) });
  return { data: r.text, closedAfterMs: r.closedAfterMs, closed: r.closedByPeer };
}

function httpGet(port: number, path: string, opts: { agent?: Agent; timeoutMs?: number } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: opts.agent ?? false }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode!, body }));
      res.on('aborted', () => reject(new Error('response aborted')));
    });
    req.setTimeout(opts.timeoutMs ?? 4_000, () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Splits a byte stream of HTTP/1.1 responses with content-length bodies. */
function parseResponses(data: string): { status: number; body: string }[] {
  const out: { status: number; body: string }[] = [];
  let i = 0;
  while (i < data.length) {
    const end = data.indexOf('\r\n\r\n', i);
    if (end < 0) break;
    const head = data.slice(i, end);
    const len = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    out.push({ status: Number(head.slice(9, 12)), body: data.slice(end + 4, end + 4 + len) });
    i = end + 4 + len;
  }
  return out;
}

function rssKb(pid: number): Promise<number> {
  return readFile(`/proc/${pid}/status`, 'utf8').then((s) => Number(/VmRSS:\s+(\d+)/.exec(s)![1]));
}

function proxyConfig(name: string, body: string): string {
  return `identity:\n  files: { certFile: ${name}/svid.pem, keyFile: ${name}/key.pem, bundleFile: ${name}/bundle.pem }\n${body}admin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n${LIMITS}`;
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const ca = await TestCa.create({ trustDomain: TD });
  app = createServer({ insecureHTTPParser: true }, appHandler);
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  appPort = (app.address() as net.AddressInfo).port;
  await writeSvidFiles(ca, API, join(dir, 'api'));
  const web = await writeSvidFiles(ca, WEB, join(dir, 'web'));
  webTls = await tlsOptionsOf(web);
  await mkdir(join(dir, 'policies'));
  await writeFile(
    join(dir, 'policies', 'api.yaml'),
    `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow-web }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: [${WEB}]\n      to: { methods: [GET, POST], paths: ["/v1/**"] }\n`,
  );
  await writeFile(join(dir, 'api.yaml'), `${proxyConfig('api', `inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort} }\n`)}authorization: { policiesDir: policies }\n`);
  apiProxy = await startProxyProcess(join(dir, 'api.yaml'));
  apiInbound = apiProxy.ports.get('inbound/app')!;
  await writeFile(join(dir, 'web.yaml'), proxyConfig('web', `outbound:\n  - { name: api, listen: 127.0.0.1:0, upstream: 127.0.0.1:${apiInbound}, spiffeId: ${API} }\n`));
  webProxy = await startProxyProcess(join(dir, 'web.yaml'));
  webOutbound = webProxy.ports.get('outbound/api')!;
}, 30_000);

afterAll(async () => {
  await webProxy?.stop();
  await apiProxy?.stop();
  await new Promise<void>((r) => (app ? app.close(() => r()) : r()));
  await cleanup?.();
});

describe('slow and stalled peers', () => {
  const slowHead = 'GET /v1/slowloris HTTP/1.1\r\nHost: a\r\nX-Padding: abcdefghijklmnopqrstuvwxyz\r\n\r\n';
  const oneBytePer100ms = [...slowHead].flatMap((c) => [c, 100]);

  test.each([
    ['the outbound listener (plaintext)', false],
    ['the inbound listener (mTLS)', true],
  ])('slowloris on %s: closed with 408 after headersTimeout, counted', async (_name, mtls) => {
    const proxy = mtls ? apiProxy : webProxy;
    let r: RawResult | undefined;
    const delta = await metricDelta(proxy, 'tessera_requests_rejected_total', { reason: 'headers_timeout' }, async () => {
      r = await raw(mtls ? apiInbound : webOutbound, oneBytePer100ms, { mtls, capMs: 6_000 });
    });
    expect(r!.closed).toBe(true);
    expect(r!.data).toMatch(/^HTTP\/1\.1 408 /);
    expect(r!.data).toContain('headers_timeout');
    // 500 ms limit, checked by a 1 s sweep; far less than the ~7 s the whole head would take.
    expect(r!.closedAfterMs).toBeGreaterThanOrEqual(400);
    expect(r!.closedAfterMs).toBeLessThan(2_800);
    expect(delta).toBeGreaterThanOrEqual(1);
    expect(seen).not.toContain('/v1/slowloris');
  });

  test('a TLS client that connects and never handshakes is closed after handshakeTimeout, counted as timeout', async () => {
    let r: RawResult | undefined;
    const delta = await metricDelta(apiProxy, 'tessera_tls_handshakes_total', { direction: 'inbound', result: 'failure', reason: 'timeout' }, async () => {
      r = await raw(apiInbound, [], { capMs: 4_000 });
    });
    expect(r!.closed).toBe(true);
    expect(r!.data).toBe('');
    expect(r!.closedAfterMs).toBeGreaterThanOrEqual(400);
    expect(r!.closedAfterMs).toBeLessThan(2_500);
    expect(delta).toBeGreaterThanOrEqual(1);
  });

  test('a TLS client that trickles its ClientHello one byte at a time is still cut at the handshake timeout', async () => {
    // A TLS record header announcing a 16000-byte handshake record, then one byte every 200 ms: an inactivity
    // timer would be reset by every byte and never fire.
    const trickle: (string | number)[] = ['\x16\x03\x01\x3e\x80'];
    for (let i = 0; i < 40; i++) trickle.push(200, '\x00');
    const r = await raw(apiInbound, trickle, { capMs: 6_000 });
    expect(r.closed).toBe(true);
    expect(r.closedAfterMs).toBeLessThan(2_500);
  });

  test('2000 garbage connections in batches leave the processes serving with bounded memory', async () => {
    const pids = [apiProxy.child.pid!, webProxy.child.pid!];
    const before = await Promise.all(pids.map(rssKb));
    let seed = 12345;
    const garbage = () => {
      let s = '';
      for (let i = 0; i < 300; i++) {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        s += String.fromCharCode(seed & 0xff);
      }
      return s;
    };
    const started = Date.now();
    for (let batch = 0; batch < 20; batch++) {
      await Promise.all(
        Array.from({ length: 100 }, (_, i) => {
          // Half at the mTLS port (bad TLS records), half at the HTTP parser; the client ends its side.
          const port = i % 2 === 0 ? apiInbound : webOutbound;
          return raw(port, [garbage()], { capMs: 3_000, endAfterWrite: true });
        }),
      );
    }
    const elapsed = Date.now() - started;
    expect((await httpGet(webOutbound, '/v1/after-garbage')).status).toBe(200);
    const after = await Promise.all(pids.map(rssKb));
    for (let i = 0; i < pids.length; i++) expect(after[i]! - before[i]!).toBeLessThan(64 * 1024); // KiB
    expect(elapsed).toBeLessThan(20_000);
    const cfg = JSON.parse(await (await fetch(`http://127.0.0.1:${apiProxy.admin}/config`)).text()) as { listeners: { open: number }[] };
    expect(cfg.listeners[0]!.open).toBeLessThanOrEqual(2); // nothing left hanging
  }, 40_000);
});

describe('limits and malformed requests', () => {
  test('too many headers → 431, counted, never forwarded', async () => {
    const headers = Array.from({ length: 30 }, (_, i) => `X-H${i}: v\r\n`).join('');
    const delta = await metricDelta(webProxy, 'tessera_requests_rejected_total', { reason: 'too_many_headers' }, async () => {
      const r = await raw(webOutbound, [`GET /v1/many HTTP/1.1\r\nHost: a\r\n${headers}\r\n`]);
      expect(r.data).toMatch(/^HTTP\/1\.1 431 /);
      expect(r.closed).toBe(true);
    });
    expect(delta).toBe(1);
    expect(seen).not.toContain('/v1/many');
  });

  /** A second request hidden where a lenient parser would find it; its path names the case. */
  const hidden = (n: number) => `GET /v1/smuggled-${n} HTTP/1.1\r\nHost: a\r\n\r\n`;
  const z = '0\r\n\r\n';
  test.each([
    [1, 'Content-Length and Transfer-Encoding', (h: string) => `POST /v1/s HTTP/1.1\r\nHost: a\r\nContent-Length: ${z.length + h.length}\r\nTransfer-Encoding: chunked\r\n\r\n${z}${h}`],
    [2, 'Transfer-Encoding and Content-Length', (h: string) => `POST /v1/s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n${h.length.toString(16)}\r\n${h}\r\n${z}`],
    [3, 'two different Content-Lengths', (h: string) => `POST /v1/s HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: ${h.length}\r\n\r\n${h}`],
    [4, 'Transfer-Encoding not ending in chunked', (h: string) => `POST /v1/s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n${z}${h}`],
    [5, 'an obfuscated Transfer-Encoding', (h: string) => `POST /v1/s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n${z}${h}`],
    [6, 'a vertical tab after chunked', (h: string) => `POST /v1/s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\x0b\r\n\r\n${z}${h}`],
    [7, 'an empty Transfer-Encoding with Content-Length', (h: string) => `POST /v1/s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\nContent-Length: ${z.length}\r\n\r\n${z}${h}`],
    [8, 'Transfer-Encoding on HTTP/1.0', (h: string) => `POST /v1/s HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${z}${h}`],
    [9, 'obs-fold hiding a Transfer-Encoding', (h: string) => `POST /v1/s HTTP/1.1\r\nHost: a\r\nContent-Length: ${z.length}\r\nX-A: b\r\n Transfer-Encoding: chunked\r\n\r\n${z}${h}`],
    [10, 'a space before the colon', (h: string) => `POST /v1/s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\nContent-Length: ${z.length}\r\n\r\n${z}${h}`],
    [11, 'a bare LF ending the chunked body', (h: string) => `POST /v1/s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n${h}`],
    [12, 'a bare LF ending a chunk', (h: string) => `POST /v1/s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\n${z}${h}`],
  ])('smuggling %i: %s → 400, and the app never sees a second request', async (n, _name, build) => {
    const r = await raw(webOutbound, [build(hidden(n))], { capMs: 4_000 });
    expect(r.data).toMatch(/^HTTP\/1\.1 400 /);
    expect(parseResponses(r.data)).toHaveLength(1);
    expect(r.closed).toBe(true);
    await new Promise((res) => setTimeout(res, 100));
    expect(seen).not.toContain(`/v1/smuggled-${n}`);
  });

  test('a request whose body arrives after an early response is not read as a new request', async () => {
    const body = 'GET /v1/smuggled-early HTTP/1.1\r\nHost: a\r\n\r\n';
    const r = await raw(webOutbound, [`POST /v1/early HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\n\r\n`, 400, body], { capMs: 2_500 });
    expect(r.data).toMatch(/^HTTP\/1\.1 200 /);
    await new Promise((res) => setTimeout(res, 200));
    expect(seen).toContain('/v1/early');
    expect(seen).not.toContain('/v1/smuggled-early');
  });
});

describe('protocol features', () => {
  test('pipelined requests are answered in order, even when the first is the slowest', async () => {
    const reqs = ['/v1/slow?ms=300', '/v1/p2', '/v1/p3'].map((p) => `GET ${p} HTTP/1.1\r\nHost: a\r\n\r\n`).join('');
    const r = await raw(webOutbound, [reqs], { capMs: 3_000, doneWhen: (d) => parseResponses(d).length === 3 && d.endsWith('}') });
    const responses = parseResponses(r.data);
    expect(responses.map((x) => x.status)).toEqual([200, 200, 200]);
    expect(responses.map((x) => (JSON.parse(x.body) as { path: string }).path)).toEqual(['/v1/slow?ms=300', '/v1/p2', '/v1/p3']);
  });

  test('an HTTP/1.0 request without Host is answered and the connection closed', async () => {
    const r = await raw(webOutbound, ['GET /v1/h10 HTTP/1.0\r\n\r\n'], { capMs: 3_000 });
    expect(r.closed).toBe(true);
    const [res] = parseResponses(r.data);
    expect(res!.status).toBe(200);
    expect(JSON.parse(res!.body)).toMatchObject({ path: '/v1/h10', method: 'GET' });
  });

  test('Expect: 100-continue with a curl upload: the 100 comes through and the body arrives whole', async () => {
    const file = join(dir, 'upload.bin');
    await writeFile(file, Buffer.alloc(200_000, 'u'));
    const started = Date.now();
    const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
      execFile(
        'curl',
        ['-sS', '-v', '--max-time', '10', '--expect100-timeout', '8', '-H', 'Expect: 100-continue', '--data-binary', `@${file}`, `http://127.0.0.1:${webOutbound}/v1/upload`],
        (e, out, err) => (e ? reject(new Error(`${e.message}\n${err}`)) : resolve({ stdout: out, stderr: err })),
      ),
    );
    expect(stderr).toMatch(/< HTTP\/1\.1 100 Continue/);
    expect(JSON.parse(stdout)).toMatchObject({ method: 'POST', path: '/v1/upload', bodyLength: 200_000 });
    expect(Date.now() - started).toBeLessThan(5_000); // curl did not sit out its 8 s expect timeout
  });

  test('large responses, then more requests on the same keep-alive connection (no pooled connection left paused)', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const tail = await httpGet(webOutbound, '/v1/tail', { agent, timeoutMs: 4_000 });
      expect(tail.body.length).toBe(131_072);
      expect(tail.body.endsWith('zzz')).toBe(true);
      expect((await httpGet(webOutbound, '/v1/after-tail', { agent, timeoutMs: 3_000 })).status).toBe(200);
      const big = await httpGet(webOutbound, '/v1/big?n=2000000', { agent, timeoutMs: 4_000 });
      expect(big.body.length).toBe(2_000_000);
      for (let i = 0; i < 3; i++) expect((await httpGet(webOutbound, `/v1/after-big-${i}`, { agent, timeoutMs: 3_000 })).status).toBe(200);
    } finally {
      agent.destroy();
    }
  });
});

describe('failures mid-exchange', () => {
  test('an app that closes mid-response: the client sees the cut, the proxies stay up', async () => {
    const outcome = await new Promise<{ aborted: boolean; bytes: number }>((resolve) => {
      let bytes = 0;
      const req = request({ host: '127.0.0.1', port: webOutbound, path: '/v1/cut', agent: false }, (res) => {
        expect(res.statusCode).toBe(200);
        res.on('data', (d: Buffer) => {
          bytes += d.length;
        });
        res.on('aborted', () => resolve({ aborted: true, bytes }));
        res.on('error', () => resolve({ aborted: true, bytes }));
        res.on('end', () => resolve({ aborted: false, bytes }));
      });
      req.on('error', () => resolve({ aborted: true, bytes }));
      req.setTimeout(4_000, () => req.destroy());
      req.end();
    });
    expect(outcome.aborted).toBe(true);
    expect(outcome.bytes).toBeLessThan(100_000);
    expect((await httpGet(webOutbound, '/v1/after-cut')).status).toBe(200);
  });

  test('a client that gives up while the app is slow: the next requests work and the pool survives', async () => {
    const opened = async () => metricValue(await metrics(webProxy), 'tessera_upstream_connections_opened_total', {});
    const before = await opened();
    await new Promise<void>((resolve) => {
      const req = request({ host: '127.0.0.1', port: webOutbound, path: '/v1/slow?ms=600', agent: false });
      req.on('error', () => resolve());
      req.end();
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 150);
    });
    expect((await httpGet(webOutbound, '/v1/after-abort')).status).toBe(200);
    await until('the slow response has gone into the void', () => answered.includes('/v1/slow?ms=600'), 5_000, 20);
    for (let i = 0; i < 5; i++) expect((await httpGet(webOutbound, `/v1/after-abort-${i}`)).status).toBe(200);
    expect((await opened()) - before).toBeLessThanOrEqual(1);
    expect(seen).toContain('/v1/slow?ms=600');
  });
});

describe('drain', () => {
  test('SIGTERM while a slow request is in flight: it completes, new connections are refused, exit code 0', async () => {
    await writeFile(join(dir, 'drain.yaml'), `${proxyConfig('api', `inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort} }\n`)}authorization: { policiesDir: policies }\n`);
    const proxy = await startProxyProcess(join(dir, 'drain.yaml'));
    const port = proxy.ports.get('inbound/app')!;
    try {
      const inFlight = new Promise<{ status: number; body: string }>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port, ...webTls, checkServerIdentity: () => undefined }, () => s.write('GET /v1/slow?ms=1000 HTTP/1.1\r\nHost: a\r\n\r\n'));
        let data = '';
        s.on('data', (d: Buffer) => {
          data += d.toString('latin1');
        });
        s.on('error', reject);
        s.on('close', () => {
          const [res] = parseResponses(data);
          if (res) resolve(res);
          else reject(new Error(`no response before close: ${JSON.stringify(data)}`));
        });
      });
      await until('the slow request reached the app', () => seen.includes('/v1/slow?ms=1000'), 5_000, 20);
      const started = Date.now();
      const exited = proxy.stop();
      const refusedNow = () =>
        new Promise<boolean>((resolve) => {
          const s = net.connect(port, '127.0.0.1');
          s.on('connect', () => {
            s.destroy();
            resolve(false);
          });
          s.on('error', () => resolve(true));
        });
      // The listener closes as the drain begins, well before the in-flight exchange ends.
      let refused = false;
      await until('new connections refused', async () => (refused = await refusedNow()), 900, 25);
      const res = await inFlight;
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toMatchObject({ path: '/v1/slow?ms=1000' });
      expect(refused).toBe(true);
      expect(await exited).toBe(0);
      expect(Date.now() - started).toBeGreaterThanOrEqual(500); // it waited for the exchange
    } finally {
      await proxy.stop();
    }
  });
});
