// The same resource limits on every listener kind (sidecar inbound http/http2/grpc/tcp, outbound http/http2,
// edge HTTP/1.1 and h2), table-driven against one set of real `tessera proxy` processes with small limits:
// stalled and trickled TLS handshakes, trickled request headers (HTTP/1.1 bytes, HTTP/2 CONTINUATION), an h2
// session that never sends a request, the advertised SETTINGS_MAX_CONCURRENT_STREAMS and what the app sees
// when a client opens more, and an oversized h2 header list. Raw sockets and hand-made frames, on loopback.
import { readFile, writeFile } from 'node:fs/promises';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { WATCH_PATH } from '../../common/contract/config-v1.js';
import { type RunningControlPlane, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { guardH2Server } from '../../proxy/src/h2/h2-error-guard.js';
import { metricsText, sumSeries } from '../helpers/prom-metrics.js';
import { h2Frame } from '../helpers/raw-h2-app.js';
import { realTimers } from '../../shared-io/timers.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const MAX_STREAMS = 8;
// idleTimeout is long on purpose: a cut within ~2 s is the headers or handshake timeout, never the idle one.
const LIMITS = `limits: { headersTimeout: 500ms, handshakeTimeout: 500ms, idleTimeout: 20s, requestTimeout: 10s, maxHeaderBytes: 4096, maxConcurrentStreams: ${MAX_STREAMS}, drainTimeout: 2s }\n`;
/** A cut by a 500 ms timeout checked by a 1 s sweep, with room for a loaded machine. */
const CUT_MS = 3_000;

type Proto = 'h1' | 'h2' | 'tcp';
interface Kind {
  readonly name: string;
  readonly proto: Proto;
  /** mtls: a client SVID; tls: server-authenticated TLS (edge); none: plaintext (outbound). */
  readonly security: 'mtls' | 'tls' | 'none';
  port(): number;
}

let dir: string;
let cleanup: () => Promise<void>;
let api: ProxyProcess;
let web: ProxyProcess;
let webTls: { cert: string; key: string; ca: string };
const apps: { close(): void }[] = [];
/** Requests in flight at the apps, and the most ever at once, per `tag` query parameter. */
const active = new Map<string, number>();
const peak = new Map<string, number>();
const seenPaths: string[] = [];

const KINDS: readonly Kind[] = [
  { name: 'inbound http', proto: 'h1', security: 'mtls', port: () => api.ports.get('inbound/app-http')! },
  { name: 'inbound http2', proto: 'h2', security: 'mtls', port: () => api.ports.get('inbound/app-h2')! },
  { name: 'inbound grpc', proto: 'h2', security: 'mtls', port: () => api.ports.get('inbound/app-grpc')! },
  { name: 'inbound tcp', proto: 'tcp', security: 'mtls', port: () => api.ports.get('inbound/app-tcp')! },
  { name: 'outbound http', proto: 'h1', security: 'none', port: () => web.ports.get('outbound/api-http')! },
  { name: 'outbound http2', proto: 'h2', security: 'none', port: () => web.ports.get('outbound/api-h2')! },
  { name: 'edge http1', proto: 'h1', security: 'tls', port: () => web.ports.get('edge/public')! },
  { name: 'edge h2', proto: 'h2', security: 'tls', port: () => web.ports.get('edge/public')! },
];
const tlsKinds = KINDS.filter((k) => k.security !== 'none');
const h1Kinds = KINDS.filter((k) => k.proto === 'h1');
const h2Kinds = KINDS.filter((k) => k.proto === 'h2');

/** tessera_requests_rejected_total{reason} of the proxy behind `kind`, with its listener's direction. */
async function rejected(kind: Kind, reason: string): Promise<number> {
  const direction = kind.name.split(' ')[0]!;
  const proxy = direction === 'inbound' ? api : web;
  return sumSeries(await metricsText(proxy.admin), 'tessera_requests_rejected_total', { direction, reason });
}

function track(path: string, respond: () => void): void {
  seenPaths.push(path);
  const url = new URL(path, 'http://app');
  const tag = url.searchParams.get('tag') ?? '';
  const n = (active.get(tag) ?? 0) + 1;
  active.set(tag, n);
  peak.set(tag, Math.max(peak.get(tag) ?? 0, n));
  setTimeout(
    () => {
      active.set(tag, (active.get(tag) ?? 1) - 1);
      respond();
    },
    Number(url.searchParams.get('ms') ?? 0),
  );
}

async function startApps(): Promise<{ h1: number; h2: number }> {
  const h1 = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    track(req.url ?? '/', () => res.end('ok\n'));
  });
  const h2 = http2.createServer();
  guardH2Server(h2, realTimers); // an app's stream reset by the proxy must not become an uncaught error in this worker
  h2.on('stream', (stream, headers) => {
    stream.resume();
    track(String(headers[':path']), () => {
      if (stream.destroyed) return;
      stream.respond({ ':status': 200 });
      stream.end('ok\n');
    });
  });
  h2.on('sessionError', () => undefined);
  const listen = (s: net.Server) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as net.AddressInfo).port)));
  const ports = { h1: await listen(h1), h2: await listen(h2) };
  apps.push({ close: () => h1.close() }, { close: () => h2.close() });
  return ports;
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const ca = await TestCa.create({ trustDomain: TD });
  const appPorts = await startApps();
  await writeSvidFiles(ca, API, join(dir, 'api'));
  const w = await writeSvidFiles(ca, WEB, join(dir, 'web'));
  webTls = { cert: await readFile(w.certFile, 'utf8'), key: await readFile(w.keyFile, 'utf8'), ca: await readFile(w.bundleFile, 'utf8') };
  const common = (name: string) =>
    `identity:\n  files: { certFile: ${name}/svid.pem, keyFile: ${name}/key.pem, bundleFile: ${name}/bundle.pem }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\nauthorization: { defaultAction: allow }\n${LIMITS}`;
  await writeFile(
    join(dir, 'api.yaml'),
    `${common('api')}inbound:\n` +
      `  - { name: app-http, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPorts.h1}, protocol: http }\n` +
      `  - { name: app-h2, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPorts.h2}, protocol: http2 }\n` +
      `  - { name: app-grpc, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPorts.h2}, protocol: grpc }\n` +
      `  - { name: app-tcp, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPorts.h1}, protocol: tcp }\n`,
  );
  api = await startProxyProcess(join(dir, 'api.yaml'));
  const upstream = (name: string) => `127.0.0.1:${api.ports.get(`inbound/${name}`)}`;
  await writeFile(
    join(dir, 'web.yaml'),
    `${common('web')}outbound:\n` +
      `  - { name: api-http, listen: 127.0.0.1:0, upstream: ${upstream('app-http')}, spiffeId: ${API}, protocol: http }\n` +
      `  - { name: api-h2, listen: 127.0.0.1:0, upstream: ${upstream('app-h2')}, spiffeId: ${API}, protocol: http2 }\n` +
      'edge:\n  - name: public\n    listen: 127.0.0.1:0\n    certFile: web/svid.pem\n    keyFile: web/key.pem\n' +
      `    routes: [{ host: "*", pathPrefix: /, upstream: ${upstream('app-http')}, spiffeId: ${API} }]\n`,
  );
  web = await startProxyProcess(join(dir, 'web.yaml'));
}, 60_000);

afterAll(async () => {
  await web?.stop();
  await api?.stop();
  for (const a of apps) a.close();
  await cleanup?.();
});

// ---- raw clients ----

interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly stream: number;
  readonly payload: Buffer;
}

interface RawConn {
  readonly socket: net.Socket;
  readonly frames: Frame[];
  data: Buffer;
  closed: boolean;
  closedAtMs: number;
  readonly startMs: number;
  /** Resolves when the peer closes the connection, or after capMs (closed stays false). */
  closedWithin(capMs: number): Promise<boolean>;
}

const ALPN: Record<Proto, string[]> = { h1: ['http/1.1'], h2: ['h2'], tcp: [] };

/**
 * Opens a connection as `kind`'s clients do (TCP, TLS or mTLS with its ALPN); `rawTcp` stops before any TLS.
 * `ackSettings: false` never acknowledges the server's SETTINGS (a client that keeps the server's limits pending).
 */
function open(kind: Kind, rawTcp = false, ackSettings = true): Promise<RawConn> {
  return new Promise((resolve, reject) => {
    const startMs = Date.now();
    const secure = kind.security !== 'none' && !rawTcp;
    const socket: net.Socket = secure
      ? tls.connect({ host: '127.0.0.1', port: kind.port(), ALPNProtocols: ALPN[kind.proto], ...(kind.security === 'mtls' ? webTls : {}), rejectUnauthorized: false })
      : net.connect(kind.port(), '127.0.0.1');
    const conn: RawConn = {
      socket,
      frames: [],
      data: Buffer.alloc(0),
      closed: false,
      closedAtMs: 0,
      startMs,
      closedWithin: (capMs) =>
        conn.closed
          ? Promise.resolve(true)
          : new Promise((r) => {
              const t = setTimeout(() => r(false), capMs);
              socket.once('close', () => {
                clearTimeout(t);
                r(true);
              });
            }),
    };
    socket.on('data', (d: Buffer) => {
      conn.data = Buffer.concat([conn.data, d]);
      if (kind.proto !== 'h2') return;
      // Frames after the 24-byte preface is never sent by a server: parse whole frames as they arrive.
      while (conn.data.length >= 9) {
        const len = conn.data.readUIntBE(0, 3);
        if (conn.data.length < 9 + len) break;
        const f = { type: conn.data[3]!, flags: conn.data[4]!, stream: conn.data.readUInt32BE(5) & 0x7fffffff, payload: conn.data.subarray(9, 9 + len) };
        conn.frames.push(f);
        // Acknowledge the server's SETTINGS as real clients do: nghttp2 applies its own limits once acknowledged.
        if (ackSettings && f.type === SETTINGS && (f.flags & 1) === 0 && !socket.destroyed) socket.write(h2Frame(SETTINGS, 1, 0, Buffer.alloc(0)));
        conn.data = conn.data.subarray(9 + len);
      }
    });
    socket.on('error', () => undefined);
    socket.once('close', () => {
      conn.closed = true;
      conn.closedAtMs = Date.now() - startMs;
    });
    socket.once(secure ? 'secureConnect' : 'connect', () => resolve(conn));
    socket.once('error', reject);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const DATA = 0;
const HEADERS = 1;
const RST_STREAM = 3;
const SETTINGS = 4;
const PING = 6;
const GOAWAY = 7;
const CONTINUATION = 9;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** HPACK integer with an n-bit prefix (RFC 7541 §5.1), first byte ORed with `mask`. */
function hpackInt(value: number, bits: number, mask: number): number[] {
  const max = (1 << bits) - 1;
  if (value < max) return [mask | value];
  const out = [mask | max];
  let v = value - max;
  while (v >= 128) {
    out.push((v & 127) | 128);
    v >>= 7;
  }
  out.push(v);
  return out;
}
/** A literal field without indexing: by static-table name index, or a new name (RFC 7541 §6.2.2). */
function literal(nameIndexOrName: number | string, value: string): Buffer {
  const v = Buffer.from(value, 'latin1');
  const name = typeof nameIndexOrName === 'string' ? Buffer.concat([Buffer.from(hpackInt(nameIndexOrName.length, 7, 0)), Buffer.from(nameIndexOrName)]) : Buffer.alloc(0);
  const first = typeof nameIndexOrName === 'number' ? hpackInt(nameIndexOrName, 4, 0) : [0];
  return Buffer.concat([Buffer.from(first), name, Buffer.from(hpackInt(v.length, 7, 0)), v]);
}
/** GET `path` on `kind` as a complete header block (:method GET, :scheme, :path, :authority). */
function requestBlock(kind: Kind, path: string, extra: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([Buffer.from([0x82, kind.security === 'none' ? 0x86 : 0x87]), literal(4, path), literal(1, 'a.example.test'), extra]);
}

/**
 * Preface and SETTINGS; then (unless `early`) waits for the server's SETTINGS, so the automatic ACK cannot land
 * inside a header block the test sends next (a frame between HEADERS and CONTINUATION is a connection error).
 */
async function h2Open(kind: Kind, early = false, ackSettings = true): Promise<RawConn> {
  const c = await open(kind, false, ackSettings);
  c.socket.write(Buffer.concat([PREFACE, h2Frame(SETTINGS, 0, 0, Buffer.alloc(0))]));
  // Up to 5 s for the server's SETTINGS (it comes within milliseconds; a loaded CI machine once took over 1 s).
  for (let i = 0; !early && i < 250 && serverSetting(c, 0x3) === undefined && !c.closed; i++) await sleep(20);
  return c;
}

function serverSetting(c: RawConn, id: number): number | undefined {
  const s = c.frames.find((f) => f.type === SETTINGS && (f.flags & 1) === 0);
  if (!s) return undefined;
  for (let i = 0; i + 6 <= s.payload.length; i += 6) if (s.payload.readUInt16BE(i) === id) return s.payload.readUInt32BE(i + 2);
  return undefined;
}

// ---- the checks ----

// Kinds run side by side (each has its own listener, paths and tags); one kind's checks run in order.
describe.concurrent.each(tlsKinds)('TLS handshake timeout: $name', (kind) => {
  test.sequential('a client that connects and never sends a ClientHello is cut', async () => {
    const c = await open(kind, true);
    expect(await c.closedWithin(CUT_MS)).toBe(true);
    expect(c.closedAtMs).toBeGreaterThanOrEqual(400);
  });

  test.sequential('a ClientHello trickled one byte at a time is cut at the same deadline', async () => {
    const c = await open(kind, true);
    c.socket.write(Buffer.from([0x16, 0x03, 0x01, 0x3e, 0x80]));
    for (let i = 0; i < 30 && !c.closed; i++) {
      await sleep(150);
      if (!c.closed) c.socket.write(Buffer.from([0]));
    }
    expect(await c.closedWithin(CUT_MS)).toBe(true);
    expect(c.closedAtMs).toBeLessThan(CUT_MS);
  });
});

describe.concurrent.each(h1Kinds)('HTTP/1.1 request headers timeout: $name', (kind) => {
  test.sequential('a request head trickled one byte every 100 ms is cut and never reaches the app', async () => {
    const path = `/v1/slowloris-${kind.name.replace(/\W/g, '-')}`;
    const head = `GET ${path} HTTP/1.1\r\nHost: a.example.test\r\nX-Padding: ${'p'.repeat(60)}\r\n\r\n`;
    const c = await open(kind);
    for (const ch of head) {
      if (c.closed) break;
      c.socket.write(ch);
      await sleep(100);
    }
    expect(c.closed).toBe(true);
    expect(c.closedAtMs).toBeGreaterThanOrEqual(400);
    expect(c.closedAtMs).toBeLessThan(CUT_MS);
    expect(seenPaths).not.toContain(path);
  });
});

describe.concurrent.each(h2Kinds)('HTTP/2 limits: $name', (kind) => {
  const tag = (what: string) => `${what}-${kind.name.replace(/\W/g, '-')}`;

  /** Writes `bytes` one at a time, `gapMs` apart, until done or the peer closes. */
  async function trickle(c: RawConn, bytes: Buffer, gapMs: number): Promise<void> {
    for (let i = 0; i < bytes.length && !c.closed; i++) {
      c.socket.write(bytes.subarray(i, i + 1));
      await sleep(gapMs);
    }
  }

  test.sequential('a HEADERS frame whose payload is trickled one byte every 100 ms is cut at headersTimeout, never reaching the app', async () => {
    const path = `/v1/${tag('trickled-headers')}`;
    const c = await h2Open(kind);
    const f = h2Frame(HEADERS, END_STREAM | END_HEADERS, 1, requestBlock(kind, path, literal('x-slow', 'v'.repeat(100))));
    c.socket.write(f.subarray(0, 12)); // the frame header and the first bytes of the block
    await trickle(c, f.subarray(12), 100);
    expect(await c.closedWithin(CUT_MS)).toBe(true);
    expect(c.closedAtMs).toBeLessThan(CUT_MS + 500);
    expect(seenPaths).not.toContain(path);
  });

  test.sequential('a header block sent as CONTINUATION frames 600 ms apart is cut at headersTimeout, never reaching the app', async () => {
    const path = `/v1/${tag('continuation')}`;
    const c = await h2Open(kind);
    // Six fragments: fewer frames than nghttp2's CONTINUATION flood limit, so only a headers deadline can cut it.
    const block = requestBlock(kind, path, literal('x-slow', 'v'.repeat(60)));
    const size = Math.ceil(block.length / 6);
    c.socket.write(h2Frame(HEADERS, END_STREAM, 1, block.subarray(0, size)));
    for (let at = size; at < block.length && !c.closed; at += size) {
      await sleep(600);
      if (!c.closed) c.socket.write(h2Frame(CONTINUATION, at + size >= block.length ? END_HEADERS : 0, 1, block.subarray(at, at + size)));
    }
    expect(await c.closedWithin(CUT_MS)).toBe(true);
    expect(c.closedAtMs).toBeLessThan(CUT_MS + 500);
    expect(seenPaths).not.toContain(path);
  });

  test.sequential('a session that sends the preface and pings but never a request is cut at headersTimeout', async () => {
    const c = await h2Open(kind);
    for (let i = 0; i < 40 && !c.closed; i++) {
      c.socket.write(h2Frame(PING, 0, 0, Buffer.alloc(8, i)));
      await sleep(100);
    }
    expect(await c.closedWithin(CUT_MS)).toBe(true);
    expect(c.closedAtMs).toBeLessThan(CUT_MS + 500);
  });

  test.sequential('after a complete first request, a trickled second one still has to finish its headers in time', async () => {
    const c = await h2Open(kind);
    c.socket.write(h2Frame(HEADERS, END_STREAM | END_HEADERS, 1, requestBlock(kind, `/v1/${tag('first')}`)));
    for (let i = 0; i < 50 && !c.frames.some((f) => f.type === HEADERS && f.stream === 1); i++) await sleep(50);
    const path = `/v1/${tag('second-slow')}`;
    const f = h2Frame(HEADERS, END_STREAM | END_HEADERS, 3, requestBlock(kind, path, literal('x-slow', 'v'.repeat(100))));
    const t0 = Date.now();
    c.socket.write(f.subarray(0, 12));
    await trickle(c, f.subarray(12), 100);
    expect(await c.closedWithin(CUT_MS)).toBe(true);
    expect(Date.now() - t0).toBeLessThan(CUT_MS + 500);
    expect(seenPaths).not.toContain(path);
  });

  test.sequential('a slow response and an idle gap longer than headersTimeout do not cut the session (only idleTimeout does)', async () => {
    const c = await h2Open(kind);
    const answered = (id: number) => c.frames.some((f) => f.stream === id && (f.flags & END_STREAM) !== 0 && (f.type === DATA || f.type === HEADERS));
    c.socket.write(h2Frame(HEADERS, END_STREAM | END_HEADERS, 1, requestBlock(kind, `/v1/slow?ms=1500&tag=${tag('long')}`)));
    for (let i = 0; i < 60 && !answered(1) && !c.closed; i++) await sleep(50);
    expect(answered(1)).toBe(true);
    await sleep(1_800); // idle with no open stream: more than headersTimeout plus a sweep
    expect(c.closed).toBe(false);
    c.socket.write(h2Frame(HEADERS, END_STREAM | END_HEADERS, 3, requestBlock(kind, `/v1/again?tag=${tag('long')}`)));
    for (let i = 0; i < 60 && !answered(3) && !c.closed; i++) await sleep(50);
    expect(answered(3)).toBe(true);
    c.socket.destroy();
  });

  test.sequential(`SETTINGS advertise MAX_CONCURRENT_STREAMS ${MAX_STREAMS}; more streams are refused and the app never sees more at once`, async () => {
    const t = tag('streams');
    const c = await h2Open(kind, true);
    // All at once, before the server's SETTINGS can have been acknowledged: the cap must hold from the first frame.
    // 250 over it: a client may open any number before our SETTINGS reach it; the session is kept.
    const total = MAX_STREAMS + 250;
    const burst: Buffer[] = [];
    for (let i = 0; i < total; i++) burst.push(h2Frame(HEADERS, END_STREAM | END_HEADERS, 1 + 2 * i, requestBlock(kind, `/v1/slow?ms=800&tag=${t}&i=${i}`)));
    c.socket.write(Buffer.concat(burst));
    const answered = () => new Set(c.frames.filter((f) => (f.type === HEADERS || f.type === RST_STREAM) && f.stream > 0).map((f) => f.stream)).size;
    for (let i = 0; i < 60 && answered() < total && !c.closed; i++) await sleep(100);
    expect(serverSetting(c, 0x3)).toBe(MAX_STREAMS);
    const refused = c.frames.filter((f) => f.type === RST_STREAM && f.payload.readUInt32BE(0) === http2.constants.NGHTTP2_REFUSED_STREAM);
    expect(refused.length).toBeGreaterThanOrEqual(total - MAX_STREAMS);
    expect(peak.get(t) ?? 0).toBeGreaterThan(0);
    expect(peak.get(t)).toBeLessThanOrEqual(MAX_STREAMS);
    // The admitted streams are answered: refusing the rest did not cost the session.
    const ok = c.frames.filter((f) => f.type === HEADERS && f.payload[0] === 0x88).length;
    expect(ok).toBeGreaterThanOrEqual(Math.min(MAX_STREAMS, total - refused.length));
    expect(ok + refused.length).toBe(total);
    c.socket.destroy();
  });

  // A client that acknowledged our SETTINGS and goes over the limit is a protocol error at once (nghttp2); one that
  // never acknowledges them has each stream over the limit refused, and is closed after 1,000 refusals.
  test.sequential('a client that never acknowledges our SETTINGS and goes on opening streams over the limit is closed after 1,000 refusals, counted as http2_flood', async () => {
    const t = tag('over-limit');
    const before = await rejected(kind, 'http2_flood');
    const c = await h2Open(kind, false, false);
    expect(serverSetting(c, 0x3)).toBe(MAX_STREAMS);
    let id = 1;
    const open = (n: number) => {
      const burst: Buffer[] = [];
      for (let i = 0; i < n; i++, id += 2) burst.push(h2Frame(HEADERS, END_STREAM | END_HEADERS, id, requestBlock(kind, `/v1/slow?ms=1500&tag=${t}&i=${id}`)));
      c.socket.write(Buffer.concat(burst));
    };
    open(MAX_STREAMS);
    for (let i = 0; i < 50 && (peak.get(t) ?? 0) < MAX_STREAMS; i++) await sleep(50);
    // 1,200 more, in bursts, while the first ones are still in flight: every one is over the limit.
    for (let i = 0; i < 12 && !c.closed; i++) {
      open(100);
      await sleep(20);
    }
    for (let i = 0; i < 60 && !c.closed && !c.frames.some((f) => f.type === GOAWAY); i++) await sleep(50);
    const refused = c.frames.filter((f) => f.type === RST_STREAM && f.payload.readUInt32BE(0) === http2.constants.NGHTTP2_REFUSED_STREAM).length;
    expect(c.frames.some((f) => f.type === GOAWAY) || c.closed).toBe(true);
    expect(refused).toBeLessThanOrEqual(1_010);
    expect(peak.get(t)).toBeLessThanOrEqual(MAX_STREAMS);
    for (let i = 0; i < 40 && (await rejected(kind, 'http2_flood')) <= before; i++) await sleep(50);
    expect(await rejected(kind, 'http2_flood')).toBeGreaterThan(before);
    c.socket.destroy();
  });

  test.sequential('a header list larger than maxHeaderBytes never reaches the app', async () => {
    const path = `/v1/${tag('big-headers')}`;
    const c = await h2Open(kind);
    expect(serverSetting(c, 0x6)).toBe(4096);
    c.socket.write(h2Frame(HEADERS, END_STREAM | END_HEADERS, 1, requestBlock(kind, path, literal('x-big', 'b'.repeat(8_000)))));
    for (let i = 0; i < 30 && !c.closed && !c.frames.some((f) => f.stream === 1 && (f.type === RST_STREAM || f.type === HEADERS)) && !c.frames.some((f) => f.type === GOAWAY); i++) await sleep(100);
    const answer = c.frames.find((f) => f.stream === 1 && (f.type === RST_STREAM || f.type === HEADERS || f.type === DATA));
    const status = answer?.type === HEADERS ? answer.payload : null;
    // Refused one way or another: RST_STREAM, GOAWAY/close, or a 431 from the proxy (HPACK 0x8? is never 200 = 0x88).
    expect(status === null || status[0] !== 0x88, `answered ${status?.toString('hex')}; app saw it: ${seenPaths.includes(path)}`).toBe(true);
    expect(seenPaths).not.toContain(path);
    c.socket.destroy();
  });
});

describe('control plane gRPC server', () => {
  let cp: RunningControlPlane;
  beforeAll(async () => {
    const cpDir = join(dir, 'cp');
    cp = await startControlPlaneProcess(cpDir, await writeControlPlaneConfig(cpDir, 'limits: { headersTimeout: 500ms }'));
  }, 30_000);
  afterAll(async () => {
    await cp?.stop();
  });

  test('advertises MAX_CONCURRENT_STREAMS 100 in its SETTINGS', async () => {
    const [host, port] = [cp.grpc.slice(0, cp.grpc.lastIndexOf(':')), Number(cp.grpc.slice(cp.grpc.lastIndexOf(':') + 1))];
    const kind: Kind = { name: 'control plane', proto: 'h2', security: 'tls', port: () => port };
    expect(host).toBe('127.0.0.1');
    const c = await h2Open(kind);
    expect(serverSetting(c, 0x3)).toBe(100);
    c.socket.destroy();
  });

  const cpKind = (): Kind => ({ name: 'control plane', proto: 'h2', security: 'tls', port: () => Number(cp.grpc.slice(cp.grpc.lastIndexOf(':') + 1)) });
  const watchCall = () =>
    Buffer.concat([Buffer.from([0x83, 0x87]), literal(4, WATCH_PATH), literal(1, 'cp.example.test'), literal(31, 'application/grpc'), literal('te', 'trailers')]);

  test('a first call whose headers are trickled is cut at limits.headersTimeout and counted', async () => {
    const c = await h2Open(cpKind());
    const f = h2Frame(HEADERS, END_HEADERS, 1, Buffer.concat([watchCall(), literal('x-slow', 'v'.repeat(60))]));
    c.socket.write(f.subarray(0, 12));
    for (let i = 12; i < f.length && !c.closed; i++) {
      c.socket.write(f.subarray(i, i + 1));
      await sleep(100);
    }
    expect(await c.closedWithin(CUT_MS)).toBe(true);
    expect(c.closedAtMs).toBeLessThan(CUT_MS + 500);
    const metrics = await (await fetch(`http://${cp.admin}/metrics`)).text();
    expect(metrics).toMatch(/tessera_grpc_tls_failures_total\{reason="headers_timeout"\} [1-9]/);
  });

  test('a connection that makes its first call in time is not cut by the headers deadline', async () => {
    const c = await h2Open(cpKind());
    c.socket.write(h2Frame(HEADERS, END_HEADERS | END_STREAM, 1, watchCall()));
    // Well past the 500 ms deadline: only the 60 s idle close may end it.
    expect(await c.closedWithin(2_000)).toBe(false);
    expect(c.frames.some((fr) => fr.type === HEADERS && fr.stream === 1)).toBe(true);
    c.socket.destroy();
  });
});
