// `workers: 2` with an edge listener, real processes: a new key renamed over the edge key without its certificate
// is refused by both workers, and a worker killed then is restarted with the last good set its sibling serves
// (kept by the primary) instead of failing on the refused files again and again; /ready is 200 again.
import { rename, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { metricsText, sumSeries } from '../helpers/prom-metrics.js';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const EDGE = `spiffe://${TD}/ns/edge/sa/gateway`;

let dir: string;
let cleanup: () => Promise<void>;
let web: TestCa;
let app: ReturnType<typeof createServer>;
let edge: ProxyProcess;

interface WorkerView {
  slot: number;
  pid: number | null;
  listening: boolean;
  restarts: number;
  failedRestarts: number;
}

const workers = async () => ((await (await fetch(`http://127.0.0.1:${edge.admin}/config`)).json()) as { workers: WorkerView[] }).workers;
const ready = async () => (await fetch(`http://127.0.0.1:${edge.admin}/ready`)).status === 200;

/** The serial of the certificate a fresh handshake to the edge is served, and the status of one request on it. */
function servedSerial(): Promise<{ serial: string; status: string }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: edge.ports.get('edge/public')!, servername: 'a.example.test', ca: web.bundlePem(), ALPNProtocols: ['http/1.1'] }, () => {
      const serial = s.getPeerX509Certificate()!.serialNumber.toLowerCase();
      let answer = '';
      s.on('data', (d: Buffer) => {
        answer += d.toString('latin1');
      });
      s.on('end', () => resolve({ serial, status: answer.split('\r\n')[0] ?? '' }));
      s.write('GET /x HTTP/1.1\r\nhost: a.example.test\r\nconnection: close\r\n\r\n');
    });
    s.on('error', reject);
  });
}

/** Log lines (on stderr, the workers' too) with this message and result. */
const lines = (msg: string, result: string) => edge.stderr().split('\n').filter((l) => l.includes(`"msg":"${msg}"`) && l.includes(`"result":"${result}"`)).length;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const mesh = await TestCa.create({ trustDomain: TD });
  web = await TestCa.create({ trustDomain: 'web.test', rootName: 'CN=Public Web CA, O=Test' });
  const cert = await web.mintSvid('spiffe://web.test/a', { dnsSans: ['a.example.test'] });
  await writeFile(join(dir, 'edge.pem'), cert.chainPem);
  await writeFile(join(dir, 'edge.key'), cert.keyPem, { mode: 0o600 });
  await writeSvidFiles(mesh, EDGE, join(dir, 'id'));
  app = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appPort = (app.address() as AddressInfo).port;
  await writeFile(
    join(dir, 'edge.yaml'),
    [
      'workers: 2',
      'identity:',
      '  files: { certFile: id/svid.pem, keyFile: id/key.pem, bundleFile: id/bundle.pem }',
      'edge:',
      '  - name: public',
      '    listen: 127.0.0.1:0',
      '    certFile: edge.pem',
      '    keyFile: edge.key',
      '    routes:',
      `      - { host: a.example.test, pathPrefix: /, upstream: 127.0.0.1:${appPort}, unsafePlaintext: true }`,
      'authorization: { defaultAction: allow }',
      'admin: { listen: 127.0.0.1:0 }',
      'telemetry: { accessLog: off }',
      '',
    ].join('\n'),
  );
  edge = await startProxyProcess(join(dir, 'edge.yaml'), 30_000);
}, 90_000);

afterAll(async () => {
  await edge?.stop();
  app?.close();
  await cleanup?.();
});

test('a worker killed while the edge files on disk are refused restarts with the last good set, and /ready is 200', async () => {
  await until('edge ready', ready, 20_000);
  const before = await servedSerial();
  expect(before.status).toBe('HTTP/1.1 200 OK');
  // A new key without its certificate, renamed into place as a certificate manager would (the pair is refused).
  const other = await web.mintSvid('spiffe://web.test/other', { dnsSans: ['a.example.test'] });
  await writeFile(join(dir, 'edge.key.new'), other.keyPem, { mode: 0o600 });
  await rename(join(dir, 'edge.key.new'), join(dir, 'edge.key'));
  await until('both workers refused the reload', () => lines('edge certificates reload', 'refused') >= 2, 20_000);
  expect(await ready()).toBe(true);

  const [, victim] = await workers();
  process.kill(victim!.pid!, 'SIGKILL');
  await until('worker 1 restarted and listening', async () => {
    const w = (await workers())[1]!;
    return w.restarts === 1 && w.listening && w.pid !== null && w.pid !== victim!.pid;
  }, 20_000);
  await until('edge ready again', ready, 20_000);
  expect((await workers())[1]!.failedRestarts).toBe(0);
  expect(lines('edge certificates reload', 'last-good')).toBe(1);
  // Fresh handshakes land on either worker: every one is served the old, still good certificate.
  const served = await Promise.all(Array.from({ length: 16 }, () => servedSerial()));
  expect(new Set(served.map((s) => s.serial))).toEqual(new Set([before.serial]));
  expect(served.filter((s) => s.status !== 'HTTP/1.1 200 OK')).toEqual([]);
  const text = await metricsText(edge.admin);
  expect(sumSeries(text, 'tessera_worker_restarts_total', { worker: '1' })).toBe(1);
  expect(sumSeries(text, 'tessera_worker_restart_failures_total', { worker: '1' })).toBe(0);
  // Audit 61d F5: a refusal was logged without its code and counted nowhere.
  const coded = edge.stderr().split('\n').filter((l) => l.includes('"msg":"edge certificates reload"') && l.includes('"result":"refused"') && l.includes('"code":"TESSERA_ERR_EDGE_CERT_INVALID"'));
  expect(coded.length).toBeGreaterThanOrEqual(2);
  // The killed worker's own count went with it: the survivor's refusal is what is left.
  expect(sumSeries(text, 'tessera_edge_certificate_reloads_total', { result: 'refused' })).toBeGreaterThanOrEqual(1);
  expect(sumSeries(text, 'tessera_edge_certificate_reloads_total', { result: 'last-good' })).toBe(1);
  expect(sumSeries(text, 'tessera_worker_requests_total', { worker: '1' })).toBeGreaterThan(0);
}, 90_000);
