// Every failure class on the mTLS port increments its own reason in tessera_tls_handshakes_total, scraped from a
// real proxy process; the peer learns nothing (no bytes from the app, no reason text), and the proxy keeps
// serving valid callers. Table-driven: one row per hostile client.
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import * as net from 'node:net';
import { join } from 'node:path';
import type * as tls from 'node:tls';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { tlsAttempt as attemptTls } from '../helpers/tls-attempt.js';
import { makeTempDir } from '../helpers/run.js';
import { type MintedSvid, TestCa } from '../helpers/test-ca.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;

let dir: string;
let cleanup: () => Promise<void>;
let ca: TestCa;
let app: ReturnType<typeof createServer>;
let proxy: ProxyProcess;
let port: number;

async function reasonCount(reason: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${proxy.admin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('tessera_tls_handshakes_total{') && l.includes('direction="inbound"') && l.includes('result="failure"') && l.includes(`reason="${reason}"`));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** Connects with `svid` (or none), sends a request; resolves with whatever came back before the close. */
function tlsAttempt(svid: MintedSvid | null, opts: tls.ConnectionOptions = {}): Promise<string> {
  return attemptTls(port, svid, 'GET / HTTP/1.1\r\nhost: api\r\nconnection: close\r\n\r\n', opts);
}

function rawAttempt(bytes: Buffer | string, thenWaitMs = 0): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    let data = '';
    s.on('data', (d) => {
      data += d.toString('latin1');
    });
    s.on('error', () => resolve(data));
    s.on('close', () => resolve(data));
    if (thenWaitMs) s.setTimeout(thenWaitMs * 4, () => s.destroy());
  });
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  ca = await TestCa.create({ trustDomain: TD });
  app = createServer((_req, res) => res.end('app-bytes'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  await writeSvidFiles(ca, API, join(dir, 'api'));
  await writeFile(
    join(dir, 'api.yaml'),
    `identity:\n  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }\ninbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${(app.address() as net.AddressInfo).port} }\nauthorization: { defaultAction: allow }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\nlimits: { handshakeTimeout: 500ms }\n`,
  );
  proxy = await startProxyProcess(join(dir, 'api.yaml'));
  port = proxy.ports.get('inbound/app')!;
}, 30_000);

afterAll(async () => {
  await proxy?.stop();
  app?.close();
  await cleanup?.();
});

const HOUR = 3_600_000;
const rows: [string, string, () => Promise<string>][] = [
  ['no client certificate', 'no_client_cert', () => tlsAttempt(null)],
  ['a certificate from an unknown CA', 'unknown_ca', async () => tlsAttempt(await (await TestCa.create({ trustDomain: TD })).mintSvid(WEB))],
  ['a valid chain whose SPIFFE ID is in another trust domain', 'wrong_trust_domain', async () => tlsAttempt(await ca.mintSvid('spiffe://other.org/ns/default/sa/web'))],
  ['an expired SVID', 'expired', async () => tlsAttempt(await ca.mintSvid(WEB, { notBefore: new Date(Date.now() - 3 * HOUR), notAfter: new Date(Date.now() - HOUR) }))],
  ['an SVID not yet valid (clock skew)', 'not_yet_valid', async () => tlsAttempt(await ca.mintSvid(WEB, { notBefore: new Date(Date.now() + HOUR), notAfter: new Date(Date.now() + 2 * HOUR) }))],
  ['a CA:true leaf', 'bad_svid', async () => tlsAttempt(await ca.mintSvid(WEB, { broken: 'ca-leaf' }))],
  ['two URI SANs', 'bad_svid', async () => tlsAttempt(await ca.mintSvid(WEB, { broken: 'two-uri-sans' }))],
  ['a forged signature', 'bad_signature', async () => tlsAttempt(await ca.mintSvid(WEB, { broken: 'bad-signature' }))],
  ['plaintext HTTP', 'plaintext', () => rawAttempt('GET / HTTP/1.1\r\nhost: api\r\n\r\n')],
  ['random bytes', 'protocol', () => rawAttempt(Buffer.from('16030100ff01', 'hex').subarray(0, 3).toString('latin1') + 'x'.repeat(40))],
  ['a TLS 1.2-only client on a TLS 1.3 port', 'version', () => tlsAttempt(null, { maxVersion: 'TLSv1.2' })],
  ['a handshake that stops halfway', 'timeout', () => rawAttempt(Buffer.from('16030100', 'hex'), 500)],
];

test.each(rows)('%s → reason %s, nothing from the app reaches the peer', async (_name, reason, attempt) => {
  const before = await reasonCount(reason);
  const answer = await attempt();
  expect(answer).not.toContain('app-bytes');
  expect(answer).not.toContain(reason);
  const deadline = Date.now() + 3_000;
  while ((await reasonCount(reason)) <= before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect(await reasonCount(reason)).toBeGreaterThan(before);
});

test('after all of that the proxy still serves a valid caller', async () => {
  const answer = await tlsAttempt(await ca.mintSvid(WEB));
  expect(answer).toContain('app-bytes');
});
