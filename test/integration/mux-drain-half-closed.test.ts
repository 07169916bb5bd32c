// A SIGTERM drain of a real `tessera proxy` against a mesh peer that never FINs back (outside audit 56b F2): a raw
// tessera-mux/1 client over mTLS, with an SVID of the trust domain, sends `Connection: close` requests on 20
// streams (each answered and ended by the proxy) and 3 slow requests in flight, and never ends a stream itself. Before,
// those 20 streams kept their slots until the peer's FIN and held the drain to `limits.drainTimeout`. Now the draining
// proxy resets every stream that only waits for the peer's FIN with NO_ERROR after its FIN, the slow ones as soon as
// their answer is whole: every answer arrives, and the proxy exits well before its drain deadline (120 s here; it is
// SIGKILLed at 60 s, which fails the test).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { Flag, FrameType, MUX_ALPN, MuxCode } from '../../proxy/src/mux/mux-frame.js';
import { type MeshApp, startMeshApp } from '../helpers/mux-mesh.js';
import { RawPeer, frame } from '../helpers/mux-wire.js';
import { type ProxyProcess, startProxyProcess, tlsOptionsOf, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;

let cleanup: () => Promise<void>;
let app: MeshApp;
let api: ProxyProcess | undefined;
let webTls: tls.ConnectionOptions;

beforeAll(async () => {
  let dir: string;
  ({ dir, cleanup } = await makeTempDir());
  app = await startMeshApp();
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
      `inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${app.port}, protocol: http }\nadmin: { listen: 127.0.0.1:0 }\n` +
      `telemetry: { accessLog: off }\nlimits: { drainTimeout: 120s }\n`,
  );
  api = await startProxyProcess(join(dir, 'api.yaml'));
}, 60_000);

afterAll(async () => {
  await api?.stop(5_000);
  await app?.close();
  await cleanup?.();
});

const data = (id: number, text: string) => frame(FrameType.Data, 0, 0, id, Buffer.byteLength(text), Buffer.from(text, 'latin1'));
const has = (raw: RawPeer, id: number, flag: number) => raw.frames.some((f) => f.type === FrameType.Data && f.stream === id && (f.flags & flag) !== 0);
const answer = (raw: RawPeer, id: number) =>
  Buffer.concat(raw.frames.filter((f) => f.type === FrameType.Data && f.stream === id).map((f) => f.payload)).toString('latin1');

test('SIGTERM with 20 streams the peer never FINs and 3 in flight: every answer whole, each such stream reset with NO_ERROR, the proxy exits', async () => {
  const socket = tls.connect({ host: '127.0.0.1', port: api!.ports.get('inbound/app')!, ...webTls });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  const raw = new RawPeer(socket);
  await raw.next('SETTINGS', (f) => f.type === FrameType.Settings);
  const done = Array.from({ length: 20 }, (_, k) => 2 * k + 1);
  const slow = [41, 43, 45];
  for (const id of done) raw.write(frame(FrameType.Data, Flag.Syn, 0, id, 0), data(id, `GET /v1/hc?id=hc${id} HTTP/1.1\r\nhost: api\r\nconnection: close\r\n\r\n`));
  await until('every Connection: close answer ended by the proxy (FIN)', () => done.every((id) => has(raw, id, Flag.Fin)), 20_000, 20);
  for (const id of slow) raw.write(frame(FrameType.Data, Flag.Syn, 0, id, 0), data(id, `GET /v1/slow?ms=1500&id=slow${id} HTTP/1.1\r\nhost: api\r\n\r\n`));
  await until('the slow requests reached the app', () => slow.every((id) => app.received.has(`slow${id}`)), 20_000, 20);
  expect(done.some((id) => has(raw, id, Flag.Rst))).toBe(false); // outside a drain nothing is reset

  const exited = api!.stop(60_000);
  const goaway = await raw.next('GOAWAY', (f) => f.type === FrameType.GoAway, 10_000);
  expect(goaway.code).toBe(MuxCode.None);
  // The peer reads the GOAWAY (it answers the drain PING), and still never FINs.
  const ping = await raw.next('the drain PING', (f) => f.type === FrameType.Ping && (f.flags & Flag.Ack) === 0, 10_000);
  raw.write(frame(FrameType.Ping, Flag.Ack, 0, 0, ping.length));
  await until('every stream reset', () => [...done, ...slow].every((id) => has(raw, id, Flag.Rst)), 30_000, 20);
  for (const id of [...done, ...slow]) {
    const rst = raw.frames.find((f) => f.type === FrameType.Data && f.stream === id && (f.flags & Flag.Rst) !== 0)!;
    expect(rst.code, `stream ${id}`).toBe(MuxCode.None);
    expect(has(raw, id, Flag.Fin), `stream ${id} ended before its reset`).toBe(true);
    expect(answer(raw, id), `stream ${id}`).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\n\{.*\}$/);
  }
  expect(await exited).toBe(0); // not SIGKILLed at 60 s: the drain did not wait for the 120 s deadline
  api = undefined;
  await until('the connection closed', () => raw.closed, 10_000, 20);
}, 90_000);
