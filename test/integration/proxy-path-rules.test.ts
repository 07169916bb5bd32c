// The inbound mTLS listener of a real proxy holds client chains to the RFC 5280 / X509-SVID path rules that OpenSSL
// applies on the outbound side (an outside audit: the inbound side, which verifies peers itself, admitted them).
// Refused at the handshake, counted under `bad_svid` and logged with their code: a pathLenConstraint the chain
// breaks, a codeSigning-only extendedKeyUsage, a SHA-1-signed leaf, an RSA-1024 leaf (TLS 1.3) and an RSA-512 leaf
// (TLS 1.2), an RSA key with a 3,070-bit public exponent on the intermediate or the leaf; a normal SVID of the same
// CA is still served. `tessera svid verify` gives the same answer.
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type * as tls from 'node:tls';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type ErrorCode, errorMessage } from '../../common/errors.js';
import { encodePem } from '../../common/pki/pem.js';
import { EKU, type ForgeKeyPair, type ForgeTemplate, type Forged, clientCredentials, forgeCertificate, forgeKey } from '../helpers/cert-forge.js';
import { type ProxyProcess, startProxyProcess } from '../helpers/proxy-process.js';
import { makeTempDir, tessera } from '../helpers/run.js';
import { tlsAttempt } from '../helpers/tls-attempt.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const HOUR = 3_600_000;

let dir: string;
let cleanup: () => Promise<void>;
let root: Forged;
let inter: Forged;
let app: ReturnType<typeof createServer>;
let proxy: ProxyProcess;

const at = () => ({ notBefore: new Date(Date.now() - HOUR), notAfter: new Date(Date.now() + HOUR) });
const leafUnder = (issuer: Forged, o: Partial<ForgeTemplate> = {}) =>
  forgeCertificate({ cn: 'web', key: forgeKey('ec-p256'), issuer, uriSans: [WEB], extKeyUsage: [EKU.serverAuth, EKU.clientAuth], ...at(), ...o });
const creds = (leaf: Forged, ...issuers: Forged[]) => clientCredentials([leaf.cert, ...issuers.map((i) => i.cert)], leaf.privateKey);

async function badSvidCount(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${proxy.admin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('tessera_tls_handshakes_total{') && l.includes('direction="inbound"') && l.includes('result="failure"') && l.includes('reason="bad_svid"'));
  return line ? Number(line.split(' ').pop()) : 0;
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  root = forgeCertificate({ cn: 'Path Rules Root', key: forgeKey('ec-p256'), ca: true, uriSans: [`spiffe://${TD}`], ...at() });
  inter = forgeCertificate({ cn: 'Path Rules Intermediate', key: forgeKey('ec-p256'), issuer: root, ca: true, pathLen: 0, ...at() });
  const api = forgeCertificate({ cn: 'api', key: forgeKey('ec-p256'), issuer: inter, uriSans: [API], extKeyUsage: [EKU.serverAuth, EKU.clientAuth], ...at() });
  const own = creds(api, inter);
  await writeFile(join(dir, 'svid.pem'), own.chainPem);
  await writeFile(join(dir, 'key.pem'), own.keyPem, { mode: 0o600 });
  await writeFile(join(dir, 'bundle.pem'), encodePem('CERTIFICATE', root.cert.raw));
  app = createServer((_req, res) => res.end('app-bytes'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appPort = (app.address() as AddressInfo).port;
  await writeFile(
    join(dir, 'api.yaml'),
    [
      'identity:',
      '  files: { certFile: svid.pem, keyFile: key.pem, bundleFile: bundle.pem }',
      'inbound:',
      `  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort} }`,
      `  - { name: app12, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort}, tlsMinVersion: "1.2" }`,
      'authorization: { defaultAction: allow }',
      'admin: { listen: 127.0.0.1:0 }',
      'telemetry: { accessLog: off }',
      '',
    ].join('\n'),
  );
  proxy = await startProxyProcess(join(dir, 'api.yaml'));
}, 30_000);

afterAll(async () => {
  await proxy?.stop();
  app?.close();
  await cleanup?.();
});

// The clients run at OpenSSL security level 0: Node's default (level 2) would not even load these certificates.
const weakClient: tls.ConnectionOptions = { ciphers: 'DEFAULT@SECLEVEL=0' };

/** One RSA-3072 key with a 3,070-bit public exponent, and a CA the root signed with it (made once, on first use). */
let hugeMade: ForgeKeyPair | undefined;
let hugeCa: Forged | undefined;
function hugeKey(): ForgeKeyPair {
  hugeMade ??= forgeKey('rsa-3072-e3070');
  return hugeMade;
}
function hugeIntermediate(): Forged {
  hugeCa ??= forgeCertificate({ cn: 'Huge Exponent Intermediate', key: hugeKey(), issuer: root, ca: true, ...at() });
  return hugeCa;
}

const rows: [string, ErrorCode, tls.SecureVersion, () => ReturnType<typeof creds>][] = [
  ['a CA below an intermediate with pathLen 0 (root → int pathlen:0 → int → leaf)', 'TESSERA_ERR_SVID_PATH_LENGTH', 'TLSv1.3', () => {
    const sub = forgeCertificate({ cn: 'Sub Intermediate', key: forgeKey('ec-p256'), issuer: inter, ca: true, ...at() });
    return creds(leafUnder(sub), sub, inter);
  }],
  ['a leaf whose extendedKeyUsage is codeSigning only (critical)', 'TESSERA_ERR_SVID_BAD_EKU', 'TLSv1.3', () => creds(leafUnder(inter, { extKeyUsage: [EKU.codeSigning], extKeyUsageCritical: true }), inter)],
  ['a SHA-1-signed leaf', 'TESSERA_ERR_SVID_WEAK_SIGNATURE', 'TLSv1.3', () => creds(leafUnder(inter, { signature: 'ecdsa-sha1' }), inter)],
  ['an RSA-1024 leaf', 'TESSERA_ERR_SVID_WEAK_KEY', 'TLSv1.3', () => creds(leafUnder(inter, { key: forgeKey('rsa-1024') }), inter)],
  ['an RSA-512 leaf over TLS 1.2', 'TESSERA_ERR_SVID_WEAK_KEY', 'TLSv1.2', () => creds(leafUnder(inter, { key: forgeKey('rsa-512') }), inter)],
  // Audit 56a F2: an RSA public exponent of 3,070 bits makes each signature check with the key ~200 times dearer; no
  // rule looked at it, so both chains were admitted (the root really signed the intermediate, which signed the leaf).
  ['an intermediate whose RSA key has a 3,070-bit public exponent', 'TESSERA_ERR_SVID_WEAK_KEY', 'TLSv1.3', () => creds(leafUnder(hugeIntermediate()), hugeIntermediate())],
  ['a leaf whose RSA key has a 3,070-bit public exponent', 'TESSERA_ERR_SVID_WEAK_KEY', 'TLSv1.3', () => creds(leafUnder(inter, { key: hugeKey() }), inter)],
];

test.each(rows)('%s is refused at the handshake: bad_svid, %s in the log', async (_name, code, version, make) => {
  const port = proxy.ports.get(version === 'TLSv1.2' ? 'inbound/app12' : 'inbound/app')!;
  const before = await badSvidCount();
  const answer = await tlsAttempt(port, make(), 'GET / HTTP/1.1\r\nhost: api\r\nconnection: close\r\n\r\n', { ...weakClient, maxVersion: version });
  expect(answer).not.toContain('app-bytes');
  const deadline = Date.now() + 3_000;
  while ((await badSvidCount()) <= before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect(await badSvidCount()).toBe(before + 1);
  expect(proxy.stdout() + proxy.stderr()).toContain(errorMessage(code));
});

test('a normal SVID of the same CA is still served, on both listeners', async () => {
  for (const [listener, maxVersion] of [['inbound/app', 'TLSv1.3'], ['inbound/app12', 'TLSv1.2']] as const) {
    const answer = await tlsAttempt(proxy.ports.get(listener)!, creds(leafUnder(inter), inter), 'GET / HTTP/1.1\r\nhost: api\r\nconnection: close\r\n\r\n', { maxVersion });
    expect(answer).toContain('app-bytes');
  }
});

test('`tessera svid verify` judges the same chain the same way', async () => {
  const sub = forgeCertificate({ cn: 'Sub Intermediate', key: forgeKey('ec-p256'), issuer: inter, ca: true, ...at() });
  await writeFile(join(dir, 'pathlen.pem'), creds(leafUnder(sub), sub, inter).chainPem);
  const r = await tessera(['svid', 'verify', '--bundle', join(dir, 'bundle.pem'), join(dir, 'pathlen.pem')]);
  expect(r.code).toBe(1);
  expect(JSON.parse(r.stdout)).toMatchObject({ valid: false, reason: 'bad_svid', code: 'TESSERA_ERR_SVID_PATH_LENGTH' });
});

test('`tessera svid verify` refuses the 3,070-bit exponent on the intermediate, naming it', async () => {
  await writeFile(join(dir, 'huge.pem'), creds(leafUnder(hugeIntermediate()), hugeIntermediate()).chainPem);
  const r = await tessera(['svid', 'verify', '--bundle', join(dir, 'bundle.pem'), join(dir, 'huge.pem')]);
  expect(r.code).toBe(1);
  const out = JSON.parse(r.stdout) as { message: string };
  expect(out).toMatchObject({ valid: false, reason: 'bad_svid', code: 'TESSERA_ERR_SVID_WEAK_KEY' });
  expect(out.message).toContain('intermediate CN=Huge Exponent Intermediate: an RSA key with a public exponent of 3070 bits (at most 2^31-1)');
});
