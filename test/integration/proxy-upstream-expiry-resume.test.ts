// A real proxy stops trusting an upstream whose SVID has expired, even though it holds a session ticket to resume
// with (an outside audit: resumed sessions skipped checkServerIdentity, so requests kept reaching an upstream past
// its NotAfter for as long as it handed out tickets). The upstream's leaf lives a few seconds; before its NotAfter
// requests go through (resumed after the first), after it they get 502 upstream_unavailable and the handshake
// failure is counted as `expired`, as a full handshake with that certificate is.
import { writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;

let dir: string;
let cleanup: () => Promise<void>;
let ca: TestCa;
let proxy: ProxyProcess;
let upstream: tls.Server;
let outPort: number;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  ca = await TestCa.create({ trustDomain: TD });
  await writeSvidFiles(ca, WEB, join(dir, 'web'));
  // Answers and closes every connection, so each request is a new handshake (resumed once a ticket is held). Its
  // short-lived SVID is set by the test, once the proxy is up.
  const placeholder = await ca.mintSvid(API);
  upstream = tls.createServer({ cert: placeholder.chainPem, key: placeholder.keyPem, ALPNProtocols: ['http/1.1'] }, (s) => {
    s.once('data', () => s.end('HTTP/1.1 200 OK\r\ncontent-length: 8\r\nconnection: close\r\n\r\nupstream'));
    s.on('error', () => undefined);
  });
  upstream.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const upstreamPort = (upstream.address() as AddressInfo).port;
  await writeFile(
    join(dir, 'web.yaml'),
    [
      'identity:',
      '  files: { certFile: web/svid.pem, keyFile: web/key.pem, bundleFile: web/bundle.pem }',
      'outbound:',
      `  - { name: api, listen: 127.0.0.1:0, upstream: 127.0.0.1:${upstreamPort}, spiffeId: ${API} }`,
      'admin: { listen: 127.0.0.1:0 }',
      'telemetry: { accessLog: off }',
      '',
    ].join('\n'),
  );
  proxy = await startProxyProcess(join(dir, 'web.yaml'));
  outPort = proxy.ports.get('outbound/api')!;
}, 30_000);

afterAll(async () => {
  await proxy?.stop();
  if (upstream) await new Promise((r) => upstream.close(r));
  await cleanup?.();
});

/** One request through the outbound listener: the status line and the x-tessera-error, or the upstream's body. */
async function get(): Promise<{ status: number; body: string; error: string | null }> {
  const res = await fetch(`http://127.0.0.1:${outPort}/`);
  return { status: res.status, body: await res.text(), error: res.headers.get('x-tessera-error') };
}

async function handshakes(): Promise<{ resumedOk: number; expired: number }> {
  const text = await (await fetch(`http://127.0.0.1:${proxy.admin}/metrics`)).text();
  const sum = (re: RegExp) =>
    text
      .split('\n')
      .filter((l) => l.startsWith('tessera_tls_handshakes_total{') && l.includes('direction="outbound"') && re.test(l))
      .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
  return { resumedOk: sum(/result="success".*resumed="true"|resumed="true".*result="success"/), expired: sum(/reason="expired"/) };
}

test('requests stop at the upstream SVID NotAfter, resumption or not', async () => {
  // X.509 times are whole seconds: NotAfter 3 to 4 s from now.
  const notAfter = new Date(Math.ceil(Date.now() / 1000) * 1000 + 3_000);
  const svid = await ca.mintSvid(API, { notBefore: new Date(Date.now() - 60_000), notAfter });
  upstream.setSecureContext({ cert: svid.chainPem, key: svid.keyPem });

  for (let i = 0; i < 4; i++) expect(await get()).toMatchObject({ status: 200, body: 'upstream' });
  expect((await handshakes()).resumedOk).toBeGreaterThan(0);

  // Wait out the NotAfter (OpenSSL and the proxy judge whole seconds: one more to be past it).
  while (Date.now() <= notAfter.getTime() + 1_000) await new Promise((r) => setTimeout(r, 100));
  const expiredBefore = (await handshakes()).expired;
  for (let i = 0; i < 2; i++) expect(await get()).toMatchObject({ status: 502, error: 'upstream_unavailable' });
  expect((await handshakes()).expired).toBe(expiredBefore + 2);
});
