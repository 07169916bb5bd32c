// A mesh peer that pauses its tessera-mux/1 streams and feeds them a byte per turn, against a real `tessera proxy`
// (outside audit 51c F1, at reduced size): a raw mux client over mTLS, with an SVID of the trust domain, opens 20
// streams on the inbound listener and pipelines more GETs on each than their 64 KiB window can answer, granting no
// window, so the proxy stops reading them; then it sends each a POST whose 4,000-byte body comes one 1-byte DATA
// frame per stream per write. The session keeps serving meanwhile (a new stream is answered), no session ends for a
// fault, and once the client grants window every answer comes, the echoed body byte for byte in order. The proxy's
// RSS is printed, not asserted (before the fix this is where it grew by one buffer per byte). Also audit 51c I1: a
// WINDOW_UPDATE flagged SYN opens no stream: the session ends with GOAWAY protocol, counted in
// tessera_mux_sessions_ended_total, and its request never reaches the app.
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Flag, FrameType, MUX_ALPN, MuxCode, STREAM_WINDOW } from '../../proxy/src/mux/mux-frame.js';
import { proxyMetric } from '../helpers/mux-mesh.js';
import { RawPeer, frame } from '../helpers/mux-wire.js';
import { rssBytes } from '../helpers/process-rss.js';
import { type ProxyProcess, startProxyProcess, tlsOptionsOf, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const STREAMS = 20;
const GETS = 20;
const BIG = 4_096;
const BODY = 4_000;

let dir: string;
let cleanup: () => Promise<void>;
let api: ProxyProcess;
let app: { close(): void };
const appPaths: string[] = [];
let webTls: tls.ConnectionOptions;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const server = createServer((req, res) => {
    appPaths.push(req.url ?? '');
    const parts: Buffer[] = [];
    req.on('data', (b: Buffer) => parts.push(b));
    req.on('end', () => {
      const body = req.url === '/echo' ? Buffer.concat(parts) : req.url === '/big' ? Buffer.alloc(BIG, 'b') : Buffer.from('ok\n');
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
      res.end(body);
    });
  });
  const appPort = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
  app = { close: () => server.close() };
  const ca = await TestCa.create({ trustDomain: TD });
  await writeSvidFiles(ca, API, join(dir, 'api'));
  webTls = { ...(await tlsOptionsOf(await writeSvidFiles(ca, WEB, join(dir, 'web')))), ALPNProtocols: [MUX_ALPN], checkServerIdentity: () => undefined };
  await mkdir(join(dir, 'policies'));
  await writeFile(
    join(dir, 'policies', 'allow.yaml'),
    `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: [${WEB}]\n`,
  );
  await writeFile(
    join(dir, 'api.yaml'),
    `identity:\n  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }\nauthorization: { policiesDir: policies }\n` +
      `inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort}, protocol: http }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n`,
  );
  api = await startProxyProcess(join(dir, 'api.yaml'));
}, 60_000);

afterAll(async () => {
  await api?.stop();
  app?.close();
  await cleanup?.();
});

/** A raw tessera-mux/1 client of api's inbound listener, as web, the server's SETTINGS read. */
async function muxClient(): Promise<RawPeer> {
  const socket = tls.connect({ host: '127.0.0.1', port: api.ports.get('inbound/app')!, ...webTls });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  expect(socket.alpnProtocol).toBe(MUX_ALPN);
  const raw = new RawPeer(socket);
  await raw.next('SETTINGS', (f) => f.type === FrameType.Settings);
  return raw;
}

const data = (id: number, payload: Buffer) => frame(FrameType.Data, 0, 0, id, payload.length, payload);
const turn = () => new Promise((r) => setImmediate(r));

/** Every DATA byte the server sent on stream `id`, in order. */
function received(raw: RawPeer, id: number): Buffer {
  return Buffer.concat(raw.frames.filter((f) => f.type === FrameType.Data && f.stream === id).map((f) => f.payload));
}

/** The complete HTTP/1.1 answers (content-length framed) in `b`, in order. */
function answers(b: Buffer): { status: number; body: Buffer }[] {
  const out: { status: number; body: Buffer }[] = [];
  for (let at = 0; ; ) {
    const end = b.indexOf('\r\n\r\n', at, 'latin1');
    if (end < 0) return out;
    const head = b.toString('latin1', at, end);
    const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    if (b.length < end + 4 + length) return out;
    out.push({ status: Number(head.slice(9, 12)), body: b.subarray(end + 4, end + 4 + length) });
    at = end + 4 + length;
  }
}

const faults = async () => {
  let n = 0;
  for (const reason of ['protocol', 'flow_control', 'frame_size', 'flood', 'stream_id', 'write_backlog']) n += await proxyMetric(api, 'tessera_mux_sessions_ended_total', { direction: 'inbound', reason });
  return n;
};

describe('a mux peer that pauses its streams and feeds them a byte per turn', () => {
  test('the session keeps serving, no fault, and once window is granted every answer comes, the body in order', async () => {
    const raw = await muxClient();
    const ids = Array.from({ length: STREAMS }, (_, k) => 1 + 2 * k);
    const get = Buffer.from('GET /big HTTP/1.1\r\nhost: api\r\n\r\n'.repeat(GETS), 'latin1');
    raw.write(...ids.flatMap((id) => [frame(FrameType.Data, Flag.Syn, 0, id, 0), data(id, get)]));
    // Their answers fill each stream's window (it is never granted more): the proxy stops reading those streams.
    await until('every window used up by answers', () => ids.every((id) => received(raw, id).length === STREAM_WINDOW), 30_000, 50);
    const rssBefore = await rssBytes(api.child.pid!);
    const bodies = ids.map((_, k) => Buffer.from(Array.from({ length: BODY }, (_, i) => (k * 37 + i * 11 + 1) & 0xff)));
    raw.write(...ids.map((id) => data(id, Buffer.from(`POST /echo HTTP/1.1\r\nhost: api\r\ncontent-length: ${BODY}\r\n\r\n`, 'latin1'))));
    for (let i = 0; i < BODY; i++) {
      raw.write(Buffer.concat(ids.map((id, k) => data(id, bodies[k]!.subarray(i, i + 1)))));
      await turn();
      if (i % 200 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    // The session still serves: a new stream is answered while the others wait, and nothing ended for a fault.
    raw.write(frame(FrameType.Data, Flag.Syn, 0, 41, 0), data(41, Buffer.from('GET /ok HTTP/1.1\r\nhost: api\r\n\r\n', 'latin1')));
    await until('the new stream answered', () => answers(received(raw, 41)).length === 1, 30_000, 50);
    expect(answers(received(raw, 41))[0]!.status).toBe(200);
    const rssAfter = await rssBytes(api.child.pid!);
    console.log(`api RSS ${(rssBefore / 2 ** 20).toFixed(0)} -> ${(rssAfter / 2 ** 20).toFixed(0)} MiB while ${STREAMS} streams held ${BODY} one-byte frames each`);
    expect(await faults()).toBe(0);
    expect(raw.count((f) => f.type === FrameType.GoAway || (f.type === FrameType.Data && (f.flags & Flag.Rst) !== 0))).toBe(0);
    // Window at last: every GET is answered, then the POST, whose body comes back byte for byte.
    raw.write(...ids.map((id) => frame(FrameType.WindowUpdate, 0, 0, id, 1 << 20)));
    await until('every answer read', () => ids.every((id) => answers(received(raw, id)).length === GETS + 1), 60_000, 100);
    ids.forEach((id, k) => {
      const got = answers(received(raw, id));
      expect(got.slice(0, GETS).every((a) => a.status === 200 && a.body.length === BIG)).toBe(true);
      expect(got[GETS]!.status).toBe(200);
      expect(got[GETS]!.body.equals(bodies[k]!)).toBe(true);
    });
    expect(await faults()).toBe(0);
    raw.socket.destroy();
  }, 180_000);

  test('a WINDOW_UPDATE flagged SYN opens no stream: GOAWAY protocol, counted, its request never reaches the app', async () => {
    const before = await proxyMetric(api, 'tessera_mux_sessions_ended_total', { direction: 'inbound', reason: 'protocol' });
    const raw = await muxClient();
    raw.write(frame(FrameType.WindowUpdate, Flag.Syn, 0, 1, 40_000), data(1, Buffer.from('GET /via-window-update HTTP/1.1\r\nhost: api\r\n\r\n', 'latin1')));
    const goaway = await raw.next('GOAWAY', (f) => f.type === FrameType.GoAway, 10_000);
    expect(goaway.code).toBe(MuxCode.Protocol);
    await until('the proxy closed the connection', () => raw.closed, 10_000, 20);
    await until('the end counted', async () => (await proxyMetric(api, 'tessera_mux_sessions_ended_total', { direction: 'inbound', reason: 'protocol' })) === before + 1, 10_000, 50);
    expect(received(raw, 1).length).toBe(0);
    expect(appPaths).not.toContain('/via-window-update');
  }, 60_000);
});
