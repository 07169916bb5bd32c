// A client flooding WINDOW_UPDATE frames is cut on every HTTP/2 listener kind (audit 27a F3): connection-level
// WINDOW_UPDATE +1 frames, which nghttp2 takes without answer or limit, cost the edge 15 % of a core for as long
// as the client kept on, and the connection stayed. Now the client's control traffic is bounded by what it was sent
// (h2-frame-budget.ts): the edge (anonymous TLS), the outbound h2c listener (the local app) and the inbound listener
// (a mesh peer) send GOAWAY ENHANCE_YOUR_CALM within seconds and count tessera_requests_rejected_total{reason=
// "http2_flood"}. The same with the frames on an open request stream. Well-behaved clients moving megabytes both ways, whose
// WINDOW_UPDATEs answer the proxy's DATA, are not cut. A client cannot pay for the flood with requests whose header
// fields it names by an HPACK index either (audit 53a F3: a 3.9 KB table entry named three times a request bought
// ~1,000 WINDOW_UPDATEs per request, never cut): header fields earn what they took on the wire (h2-header-credit.ts).
// Real proxy processes, raw frames over real sockets, on loopback.
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { metricsText, sumSeries } from '../helpers/prom-metrics.js';
import { type H2Stage, STAGE_API, startH2Stage } from '../helpers/h2-stage.js';
import type { ProxyProcess } from '../helpers/proxy-process.js';
import { h2Frame as frame, hpackBlock as block } from '../helpers/raw-h2-app.js';
import { until } from '../helpers/until.js';

const [DATA, HEADERS, RST_STREAM, SETTINGS, GOAWAY, WINDOW_UPDATE] = [0, 1, 3, 4, 7, 8];
const [END_STREAM, END_HEADERS, ACK] = [0x1, 0x4, 0x1];
const ENHANCE_YOUR_CALM = 0xb;
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

let stage: H2Stage;
let api: ProxyProcess;
let web: ProxyProcess;
let webCred = { cert: '', key: '' };
const servers: http2.Http2Server[] = [];

/** h2c app: reads a request's body, answers 200 with `x-size` bytes (0 when absent). */
function startApp(): Promise<number> {
  const app = http2.createServer();
  app.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    stream.resume();
    stream.on('end', () => {
      if (stream.destroyed || stream.closed) return;
      stream.respond({ ':status': 200 });
      stream.end(Buffer.alloc(Number(headers['x-size'] ?? 0), 0x61));
    });
  });
  servers.push(app);
  return new Promise((r) => app.listen(0, '127.0.0.1', () => r((app.address() as net.AddressInfo).port)));
}

beforeAll(async () => {
  const app = await startApp();
  stage = await startH2Stage({
    inbound: { 'app-h2': app },
    outbound: (inbound) => [`{ name: api-h2, listen: 127.0.0.1:0, upstream: 127.0.0.1:${inbound('app-h2')}, spiffeId: ${STAGE_API}, protocol: http2 }`],
    edgeRoutes: () => [`{ host: "*", pathPrefix: /, upstream: 127.0.0.1:${app}, unsafePlaintext: true, protocol: http2 }`],
  });
  ({ api, web, webCred } = stage);
}, 60_000);

afterAll(async () => {
  await stage?.stop();
  for (const s of servers) s.close();
});

const SURFACES = [
  { name: 'edge', direction: 'edge', proc: () => web, port: () => web.ports.get('edge/public')!, security: 'tls' as const, authority: 'a.example.test' },
  { name: 'outbound h2c', direction: 'outbound', proc: () => web, port: () => web.ports.get('outbound/api-h2')!, security: 'none' as const, authority: 'api' },
  { name: 'inbound', direction: 'inbound', proc: () => api, port: () => api.ports.get('inbound/app-h2')!, security: 'web' as const, authority: 'api' },
];
type Surface = (typeof SURFACES)[number];

interface RawConn {
  readonly socket: net.Socket;
  goaway: number | undefined;
  closed: boolean;
  /** Streams the proxy ended (END_STREAM or RST_STREAM). */
  readonly ended: Set<number>;
}

async function rawOpen(s: Surface): Promise<RawConn> {
  const tcp = net.connect(s.port(), '127.0.0.1');
  tcp.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    tcp.once('connect', resolve);
    tcp.once('error', reject);
  });
  let socket: net.Socket = tcp;
  if (s.security !== 'none') {
    const t = tls.connect({ socket: tcp, ALPNProtocols: ['h2'], rejectUnauthorized: false, servername: s.authority, ...(s.security === 'web' ? webCred : {}) });
    await new Promise<void>((resolve, reject) => {
      t.once('secureConnect', resolve);
      t.once('error', reject);
    });
    socket = t;
  }
  const c: RawConn = { socket, goaway: undefined, closed: false, ended: new Set() };
  let buf = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
      const len = buf.readUIntBE(0, 3);
      const [type, flags] = [buf[3]!, buf[4]!];
      if (type === GOAWAY) c.goaway = buf.readUInt32BE(13);
      if (((type === HEADERS || type === DATA) && (flags & END_STREAM) !== 0) || type === RST_STREAM) c.ended.add(buf.readUInt32BE(5) & 0x7fffffff);
      buf = buf.subarray(9 + len);
      if (type === SETTINGS && (flags & ACK) === 0 && !socket.destroyed) socket.write(frame(SETTINGS, ACK, 0));
    }
  });
  socket.on('error', () => undefined);
  socket.once('close', () => {
    c.closed = true;
  });
  socket.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0)]));
  return c;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const floods = async (p: ProxyProcess, direction: string) => sumSeries(await metricsText(p.admin), 'tessera_requests_rejected_total', { direction, reason: 'http2_flood' });

/** Sends `batch` (500 times over) every 20 ms for up to 6 s, until the proxy sends GOAWAY or closes. */
async function flood(c: RawConn, batch: Buffer): Promise<void> {
  const many = Buffer.concat(Array.from({ length: 500 }, () => batch));
  const until = Date.now() + 6_000;
  while (Date.now() < until && c.goaway === undefined && !c.closed) {
    c.socket.write(many);
    await sleep(20);
  }
}

const increment = Buffer.from([0, 0, 0, 1]);

describe.each(SURFACES)('$name', (s) => {
  test('connection-level WINDOW_UPDATE +1 frames without end: GOAWAY ENHANCE_YOUR_CALM, counted as http2_flood', async () => {
    const before = await floods(s.proc(), s.direction);
    const c = await rawOpen(s);
    await flood(c, frame(WINDOW_UPDATE, 0, 0, increment));
    expect(c.goaway).toBe(ENHANCE_YOUR_CALM);
    await until('the flood counted', async () => (await floods(s.proc(), s.direction)) === before + 1, 5_000);
    await until('the connection closed', () => c.closed, 5_000, 20);
    c.socket.destroy();
  }, 20_000);

  test('WINDOW_UPDATE +1 frames on an open stream: cut the same', async () => {
    const c = await rawOpen(s);
    const head = [[':method', 'POST'], [':scheme', s.security === 'none' ? 'http' : 'https'], [':path', '/public/slow'], [':authority', s.authority]] as const;
    c.socket.write(frame(HEADERS, END_HEADERS, 1, block(head)));
    await flood(c, frame(WINDOW_UPDATE, 0, 1, increment));
    expect(c.goaway).toBe(ENHANCE_YOUR_CALM);
    c.socket.destroy();
  }, 20_000);
});

/** An HPACK integer with a `bits`-bit prefix (RFC 7541 section 5.1), `flags` in the first byte's other bits. */
function hpackInt(v: number, bits: number, flags: number): Buffer {
  const max = (1 << bits) - 1;
  if (v < max) return Buffer.from([flags | v]);
  const out = [flags | max];
  for (v -= max; v >= 128; v >>= 7) out.push((v & 127) | 128);
  out.push(v);
  return Buffer.from(out);
}
const hpackString = (s: string) => Buffer.concat([hpackInt(s.length, 7, 0), Buffer.from(s)]);
/** A literal field with a new name, added to the connection's dynamic table (its newest entry, index 62). */
const indexedLiteral = (name: string, value: string) => Buffer.concat([Buffer.from([0x40]), hpackString(name), hpackString(value)]);
/** The dynamic table's newest entry: one byte on the wire. */
const NEWEST = hpackInt(62, 7, 0x80);

describe.each(SURFACES)('$name', (s) => {
  test('requests naming a 3.9 KB HPACK table entry three times do not pay for 900 WINDOW_UPDATEs each: cut, counted as http2_flood', async () => {
    const before = await floods(s.proc(), s.direction);
    const c = await rawOpen(s);
    const big = 'v'.repeat(3_900);
    const wus = Buffer.concat(Array.from({ length: 900 }, () => frame(WINDOW_UPDATE, 0, 0, increment)));
    const end = Date.now() + 10_000;
    // One request at a time, each answered by the app before the next: no stream is refused or reset.
    for (let id = 1; id < 10_000 && Date.now() < end && c.goaway === undefined && !c.closed; id += 2) {
      const head = block([[':method', 'GET'], [':scheme', s.security === 'none' ? 'http' : 'https'], [':path', `/public/amp/${id}`], [':authority', s.authority]]);
      const named = id === 1 ? [indexedLiteral('x-big', big), NEWEST, NEWEST] : [NEWEST, NEWEST, NEWEST];
      c.socket.write(Buffer.concat([frame(HEADERS, END_HEADERS | END_STREAM, id, Buffer.concat([head, ...named])), wus]));
      await until(`request ${id} answered`, () => c.ended.has(id) || c.goaway !== undefined || c.closed, 5_000, 1);
    }
    expect(c.goaway).toBe(ENHANCE_YOUR_CALM);
    await until('the flood counted', async () => (await floods(s.proc(), s.direction)) === before + 1, 5_000);
    c.socket.destroy();
  }, 30_000);
});

/** A well-behaved client: `n` requests one after another, each uploading and downloading `bytes`. */
async function exchange(s: Surface, n: number, bytes: number): Promise<number[]> {
  const session = http2.connect(`${s.security === 'none' ? 'http' : 'https'}://127.0.0.1:${s.port()}`, { rejectUnauthorized: false, servername: s.authority, ...(s.security === 'web' ? webCred : {}) });
  session.on('error', () => undefined);
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) {
    statuses.push(
      await new Promise<number>((resolve) => {
        const req = session.request({ ':method': 'POST', ':path': `/public/big/${i}`, ':authority': s.authority, 'x-size': String(bytes) });
        let status = 0;
        let got = 0;
        req.on('response', (h) => {
          status = Number(h[':status']);
        });
        req.on('data', (d: Buffer) => {
          got += d.length;
        });
        req.on('end', () => resolve(got === bytes ? status : -got));
        req.on('error', () => resolve(0));
        // Written in 1 KiB pieces: many small DATA frames.
        const piece = Buffer.alloc(1024, 0x62);
        for (let k = 0; k < bytes / 1024; k++) req.write(piece);
        req.end();
      }),
    );
  }
  session.close();
  return statuses;
}

test.each(SURFACES)('$name: well-behaved clients moving 4 MiB each way on one connection are not cut', async (s) => {
  const before = await floods(s.proc(), s.direction);
  expect(await exchange(s, 4, 1024 * 1024)).toEqual([200, 200, 200, 200]);
  // Idle with PINGs for a while: the sweep looks every second.
  await sleep(1_500);
  expect(await floods(s.proc(), s.direction)).toBe(before);
}, 30_000);
