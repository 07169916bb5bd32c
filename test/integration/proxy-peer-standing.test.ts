// A peer is judged at its handshake, and again while its connection stays open: a real `tessera proxy` (files
// identity) serving callers whose SVID expires while their keep-alive connection or multiplexed session is open, or
// whose CA leaves the bundle. Before, such a connection took requests for as long as its caller kept it open (one
// multiplexed session per peer can stay open for good), so a key stolen with its SVID outlived the SVID. Now the
// connection is drained within a sweep (1 s) of the expiry, and at once on a new bundle: no new request, what is in
// flight gets its whole answer; a multiplexed session says GOAWAY, closes its idle streams at once (a peer kept using
// them: audit 57d F1) and refuses streams opened after it (mux-drain-unanswered);
// tessera_connections_drained_total counts each by reason.
import { writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { Flag, FrameType, MUX_ALPN } from '../../proxy/src/mux/mux-frame.js';
import { proxyMetric } from '../helpers/mux-mesh.js';
import { RawPeer, frame } from '../helpers/mux-wire.js';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;

let cleanup: () => Promise<void>;
let app: http.Server;
let api: ProxyProcess;
let ca1: TestCa;
let ca2: TestCa;
let bundleFile: string;
/** Answers held by the app until released (GET /hold). */
const held: (() => void)[] = [];
/** Every path the app was asked for. */
const seen: string[] = [];

beforeAll(async () => {
  let dir: string;
  ({ dir, cleanup } = await makeTempDir());
  app = http.createServer((req, res) => {
    seen.push(req.url ?? '');
    const answer = () => res.end(`app saw ${req.url}`);
    if (req.url === '/hold') held.push(answer);
    else answer();
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  [ca1, ca2] = await Promise.all([TestCa.create({ trustDomain: TD }), TestCa.create({ trustDomain: TD, rootName: `CN=Second Root ${TD}, O=Tessera Test` })]);
  ({ bundleFile } = await writeSvidFiles(ca1, API, join(dir, 'api')));
  await writeFile(bundleFile, ca1.bundlePem() + ca2.bundlePem());
  await writeFile(
    join(dir, 'api.yaml'),
    `identity:\n  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }\nadmin: { listen: 127.0.0.1:0 }\n` +
      `inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${(app.address() as AddressInfo).port}, protocol: http }\n` +
      `authorization: { defaultAction: allow }\ntelemetry: { accessLog: 'off' }\n`,
  );
  api = await startProxyProcess(join(dir, 'api.yaml'));
}, 60_000);

afterAll(async () => {
  for (const h of held.splice(0)) h();
  await api?.stop();
  await new Promise<void>((r) => (app ? app.close(() => r()) : r()));
  await cleanup?.();
});

const port = () => api.ports.get('inbound/app')!;

/** An mTLS connection to the inbound listener with an SVID of `ca` for WEB. */
async function connect(ca: TestCa, alpn: string, notAfter?: Date): Promise<tls.TLSSocket> {
  const svid = await ca.mintSvid(WEB, notAfter ? { notAfter } : {});
  const socket = tls.connect({ host: '127.0.0.1', port: port(), cert: svid.chainPem, key: svid.keyPem, ca: ca1.bundlePem(), ALPNProtocols: [alpn], checkServerIdentity: () => undefined });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => undefined);
  return socket;
}

/** What an HTTP/1.1 keep-alive connection has read so far, and whether it closed. */
function reader(socket: tls.TLSSocket): { text: () => string; closed: () => boolean } {
  let text = '';
  let closed = false;
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  socket.on('close', () => (closed = true));
  return { text: () => text, closed: () => closed };
}

const drained = (reason: string) => proxyMetric(api, 'tessera_connections_drained_total', { direction: 'inbound', reason });

test('a caller whose SVID expires: its keep-alive connection and its multiplexed session take no new request; in flight finishes', async () => {
  const notAfter = new Date(Math.ceil((Date.now() + 4_000) / 1000) * 1000);
  const [h1, mux] = await Promise.all([connect(ca1, 'http/1.1', notAfter), connect(ca1, MUX_ALPN, notAfter)]);
  const r = reader(h1);
  h1.write('GET /first HTTP/1.1\r\nhost: api\r\n\r\n');
  await until('the first answer', () => r.text().includes('app saw /first'), 5_000, 10);
  h1.write('GET /hold HTTP/1.1\r\nhost: api\r\n\r\n'); // in flight across the expiry
  const raw = new RawPeer(mux);
  const req = Buffer.from('GET /over-mux HTTP/1.1\r\nhost: api\r\n\r\n');
  raw.write(frame(FrameType.Data, Flag.Syn, 0, 1, req.length, req));
  await raw.next('the answer on stream 1', (f) => f.stream === 1 && f.payload.toString('latin1').includes('app saw /over-mux'));
  await until('the held request reached the app', () => held.length === 1, 5_000, 10);
  expect(r.closed()).toBe(false);
  // Past NotAfter the sweep drains both: the session says GOAWAY, the held exchange goes on.
  await raw.next('GOAWAY', (f) => f.type === FrameType.GoAway, 15_000);
  // Its idle stream 1 is closed too, without waiting for the dialer to read the GOAWAY (audit 57d F1: a peer kept
  // sending requests on its open streams); a request sent on it anyway reaches nothing.
  await raw.next('stream 1 ended by the server', (f) => f.stream === 1 && (f.flags & (Flag.Fin | Flag.Rst)) !== 0);
  const late = Buffer.from('GET /on-an-open-stream HTTP/1.1\r\nhost: api\r\n\r\n');
  raw.write(frame(FrameType.Data, 0, 0, 1, late.length, late));
  await until('both counted', async () => (await drained('peer_expired')) === 2, 5_000, 50);
  expect(r.closed()).toBe(false);
  held.shift()!();
  await until('the held answer, then the close', () => r.closed(), 5_000, 10);
  expect(r.text()).toMatch(/app saw \/hold$/);
  expect(r.text().split('HTTP/1.1 200').length - 1).toBe(2);
  // The dialer reads the GOAWAY (answers the drain PING): with no stream left the session closes, nothing served.
  const ping = await raw.next('the drain PING', (f) => f.type === FrameType.Ping && (f.flags & Flag.Ack) === 0 && f.length === 0x7fff_ffff);
  raw.write(frame(FrameType.Ping, Flag.Ack, 0, 0, ping.length));
  await until('the session closed', () => raw.closed, 5_000, 10);
  expect(seen).not.toContain('/on-an-open-stream');
  expect(raw.frames.some((f) => f.stream === 1 && f.payload.toString('latin1').includes('/on-an-open-stream'))).toBe(false);
  mux.destroy();
}, 30_000);

test('a caller whose CA leaves the bundle: its open connection is drained at once, callers of the CA kept serve on', async () => {
  const [gone, kept] = await Promise.all([connect(ca2, 'http/1.1'), connect(ca1, 'http/1.1')]);
  const rg = reader(gone);
  const rk = reader(kept);
  gone.write('GET /before HTTP/1.1\r\nhost: api\r\n\r\n');
  kept.write('GET /before HTTP/1.1\r\nhost: api\r\n\r\n');
  await until('both answered', () => rg.text().includes('app saw') && rk.text().includes('app saw'), 5_000, 10);
  await writeFile(`${bundleFile}.new`, ca1.bundlePem());
  await import('node:fs/promises').then((fs) => fs.rename(`${bundleFile}.new`, bundleFile));
  await until('the connection of the removed CA closed', () => rg.closed(), 15_000, 20);
  expect(await drained('peer_untrusted')).toBe(1);
  kept.write('GET /after HTTP/1.1\r\nhost: api\r\n\r\n');
  await until('the kept caller answered again', () => rk.text().includes('app saw /after'), 5_000, 10);
  expect(rk.closed()).toBe(false);
  kept.destroy();
}, 30_000);
