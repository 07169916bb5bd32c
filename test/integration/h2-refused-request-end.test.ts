// A request the proxy refuses as malformed after its body began, or one its client resets, never reaches the app
// as a whole one (audit 27a F2). The client sends HEADERS and DATA "abc", then breaks the stream one of three ways:
// a content-length of 100 the DATA (END_STREAM) does not meet, a pseudo-header in its trailers (nghttp2 resets both
// with PROTOCOL_ERROR), or RST_STREAM NO_ERROR (node:http2 then ends the body as if complete). On every HTTP/2 path
// (edge and outbound h2c through the inbound sidecar, the inbound sidecar directly) the raw h2c app must see HEADERS,
// DATA and a RST_STREAM, never an END_STREAM (close(CANCEL) sent DATA END_STREAM before its RST_STREAM CANCEL, and
// the next hop took it for the request's end); on the edge's HTTP/1.1 route the app must see its connection
// aborted, never a request whose body is whole (content-length met, or the last chunk). Real proxy processes, raw
// frames over real sockets, on loopback; each case 4 times (the old code lost the race in about half of them).
import * as net from 'node:net';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type H2Stage, STAGE_API, startH2Stage } from '../helpers/h2-stage.js';
import type { ProxyProcess } from '../helpers/proxy-process.js';
import { h2Frame as frame, hpackBlock as block, rawH2Server } from '../helpers/raw-h2-app.js';
import { until } from '../helpers/until.js';

const [DATA, HEADERS, RST_STREAM, SETTINGS] = [0, 1, 3, 4];
const [END_STREAM, END_HEADERS, ACK] = [0x1, 0x4, 0x1];
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

let stage: H2Stage;
let api: ProxyProcess;
let web: ProxyProcess;
let webCred = { cert: '', key: '' };
const servers: net.Server[] = [];

interface Seen {
  readonly type: number;
  readonly flags: number;
  readonly stream: number;
}
/** Every frame the raw h2c app received on a request stream (not SETTINGS, PING, WINDOW_UPDATE). */
const h2Seen: Seen[] = [];
/** Every connection the HTTP/1.1 app accepted: what it read, and whether it was closed. */
const h1Seen: { data: string; closed: boolean }[] = [];

/** A raw h2c app that records frames and never answers: a request the proxy refused gets a reset, not an answer. */
function rawRecordingApp(): net.Server {
  return rawH2Server(() => (type, flags, id) => {
    if (type === DATA || type === HEADERS || type === RST_STREAM) h2Seen.push({ type, flags, stream: id });
  });
}

function rawH1App(): net.Server {
  return net.createServer((s) => {
    const c = { data: '', closed: false };
    h1Seen.push(c);
    s.on('error', () => undefined);
    s.on('data', (d: Buffer) => {
      c.data += d.toString('latin1');
    });
    s.on('close', () => {
      c.closed = true;
    });
  });
}

function listen(server: net.Server): Promise<number> {
  servers.push(server);
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as net.AddressInfo).port)));
}

beforeAll(async () => {
  const h2App = await listen(rawRecordingApp());
  const h1App = await listen(rawH1App());
  stage = await startH2Stage({
    inbound: { 'app-raw': h2App },
    outbound: (inbound) => [`{ name: raw-h2, listen: 127.0.0.1:0, upstream: 127.0.0.1:${inbound('app-raw')}, spiffeId: ${STAGE_API}, protocol: http2 }`],
    edgeRoutes: (inbound) => [
      `{ host: h1.example.test, pathPrefix: /, upstream: 127.0.0.1:${h1App}, unsafePlaintext: true, protocol: http }`,
      `{ host: "*", pathPrefix: /, upstream: 127.0.0.1:${inbound('app-raw')}, spiffeId: ${STAGE_API}, protocol: http2 }`,
    ],
  });
  ({ api, web, webCred } = stage);
}, 60_000);

afterAll(async () => {
  await stage?.stop();
  for (const s of servers) s.close();
});

/** Opens a raw HTTP/2 connection (TLS when `security` says so) that acknowledges SETTINGS. */
async function rawOpen(port: number, security: 'none' | 'tls' | 'web', servername: string): Promise<net.Socket> {
  const tcp = net.connect(port, '127.0.0.1');
  tcp.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    tcp.once('connect', resolve);
    tcp.once('error', reject);
  });
  let socket: net.Socket = tcp;
  if (security !== 'none') {
    const t = tls.connect({ socket: tcp, ALPNProtocols: ['h2'], rejectUnauthorized: false, servername, ...(security === 'web' ? webCred : {}) });
    await new Promise<void>((resolve, reject) => {
      t.once('secureConnect', resolve);
      t.once('error', reject);
    });
    socket = t;
  }
  let buf = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
      const [type, flags] = [buf[3]!, buf[4]!];
      buf = buf.subarray(9 + buf.readUIntBE(0, 3));
      if (type === SETTINGS && (flags & ACK) === 0 && !socket.destroyed) socket.write(frame(SETTINGS, ACK, 0));
    }
  });
  socket.on('error', () => undefined);
  socket.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0)]));
  return socket;
}

/** The request's head and its first DATA, then (once the app has the request) what breaks the stream. */
const start = (head: [string, string][], cl: boolean) => Buffer.concat([frame(HEADERS, END_HEADERS, 1, block(cl ? [...head, ['content-length', '100']] : head)), frame(DATA, 0, 1, Buffer.from('abc'))]);
const BREAKS = {
  'a content-length its DATA does not meet': { cl: true, breaking: frame(DATA, END_STREAM, 1, Buffer.from('def')) },
  'a pseudo-header in its trailers': { cl: false, breaking: frame(HEADERS, END_HEADERS | END_STREAM, 1, block([[':path', '/public/admin']])) },
  'RST_STREAM NO_ERROR after part of its body': { cl: false, breaking: frame(RST_STREAM, 0, 1, Buffer.from([0, 0, 0, 0])) },
} as const;
type Break = keyof typeof BREAKS;

const H2_SURFACES = [
  { name: 'edge h2 (through the inbound sidecar)', port: () => web.ports.get('edge/public')!, security: 'tls' as const, scheme: 'https', authority: 'a.example.test' },
  { name: 'outbound h2c (through the inbound sidecar)', port: () => web.ports.get('outbound/raw-h2')!, security: 'none' as const, scheme: 'http', authority: 'api' },
  { name: 'inbound h2', port: () => api.ports.get('inbound/app-raw')!, security: 'web' as const, scheme: 'https', authority: 'api' },
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(H2_SURFACES)('$name', (s) => {
  test.each(Object.keys(BREAKS) as Break[])('%s: the app sees a reset, never the request end', async (how) => {
    for (let i = 0; i < 4; i++) {
      const from = h2Seen.length;
      const c = await rawOpen(s.port(), s.security, s.authority);
      const head: [string, string][] = [[':method', 'POST'], [':scheme', s.scheme], [':path', `/public/${i}`], [':authority', s.authority]];
      c.write(start(head, BREAKS[how].cl));
      await until('the app to see the request and its first DATA', () => h2Seen.slice(from).some((f) => f.type === DATA), 5_000, 10);
      c.write(BREAKS[how].breaking);
      await until('the app to see the reset', () => h2Seen.slice(from).some((f) => f.type === RST_STREAM), 5_000, 10);
      await sleep(100);
      const got = h2Seen.slice(from);
      expect(got.filter((f) => (f.flags & END_STREAM) !== 0 && f.type !== RST_STREAM)).toEqual([]);
      c.destroy();
    }
  });
});

describe('edge h2 to an HTTP/1.1 route', () => {
  test.each(Object.keys(BREAKS) as Break[])('%s: the app sees its connection aborted, never a whole request', async (how) => {
    for (let i = 0; i < 4; i++) {
      const from = h1Seen.length;
      const c = await rawOpen(web.ports.get('edge/public')!, 'tls', 'h1.example.test');
      const head: [string, string][] = [[':method', 'POST'], [':scheme', 'https'], [':path', `/public/${i}`], [':authority', 'h1.example.test']];
      c.write(start(head, BREAKS[how].cl));
      await until('the app to see the request and its first bytes', () => h1Seen.slice(from).some((x) => /\r\n\r\n.*abc/s.test(x.data)), 5_000, 10);
      const conn = h1Seen.slice(from).find((x) => x.data.includes('\r\n\r\n'))!;
      c.write(BREAKS[how].breaking);
      await until('the app connection to be aborted', () => conn.closed, 5_000, 10);
      const at = conn.data.indexOf('\r\n\r\n');
      const [headPart, body] = [conn.data.slice(0, at), conn.data.slice(at + 4)];
      const length = /\r\ncontent-length: *(\d+)/i.exec(headPart)?.[1];
      if (length !== undefined) expect(body.length).toBeLessThan(Number(length));
      else expect(body.endsWith('0\r\n\r\n')).toBe(false);
      c.destroy();
    }
  });
});
