// Identity hardening of the real `tessera control-plane` process: no join token and no SVID for the bare
// trust-domain ID (or another reserved ID); renewal refuses an SVID carrying an unknown critical extension or
// unrelated extra certificates (coded, audited); a requested TTL never stretches a credential past svid.ttl.
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { issueCertificate } from '../../common/pki/cert-builder.js';
import { createCsr } from '../../common/pki/csr.js';
import { type KeyPair, generateKeyPair, keyPairFromPem, privateKeyPem } from '../../common/pki/keys.js';
import { encodePem } from '../../common/pki/pem.js';
import { type RunningControlPlane, TD, controlPlaneClients, errorCode, signSvid, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { makeTempDir, tessera } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';

const WEB = `spiffe://${TD}/ns/default/sa/web`;
const SVID_TTL_S = 600;

let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane;
let bundlePem: string;
let anon: ReturnType<typeof controlPlaneClients>;
let signing: { cert: X509Certificate; key: KeyPair };

async function tokenCreate(id: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return tessera(['token', 'create', '--data-dir', cp.dataDir, '--spiffe-id', id]);
}

async function audit(): Promise<Record<string, unknown>[]> {
  return (await readFile(join(cp.dataDir, 'audit.log'), 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** An SVID signed by the control plane's own active intermediate (read from its data dir), shaped as asked. */
async function svidFromTheRealCa(id: string, extra: { criticalOid?: string } = {}): Promise<{ chainPem: string; keyPem: string; leaf: X509Certificate }> {
  const key = generateKeyPair();
  const now = Date.now();
  const leaf = await issueCertificate({
    subject: '',
    publicKey: key.publicKey,
    issuer: signing.cert,
    signer: signing.key,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 30 * 60_000),
    basicConstraints: { ca: false },
    keyUsage: ['digitalSignature'],
    uriSans: [id],
    extKeyUsage: ['serverAuth', 'clientAuth'],
    ...(extra.criticalOid ? { extraExtensions: [{ oid: extra.criticalOid, critical: true, value: Uint8Array.of(0x05, 0x00) }] } : {}),
  });
  return { chainPem: [leaf, signing.cert].map((c) => encodePem('CERTIFICATE', c.raw)).join(''), keyPem: privateKeyPem(key), leaf };
}

async function renew(svid: { chainPem: string; keyPem: string }, req: Record<string, unknown> = {}) {
  const c = controlPlaneClients(cp.grpc, bundlePem, svid);
  try {
    return await signSvid(c.identity, { csr: await createCsr(generateKeyPair(), {}), ...req });
  } finally {
    c.close();
  }
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  cp = await startControlPlaneProcess(dir, await writeControlPlaneConfig(dir, `svid: { ttl: ${SVID_TTL_S}s, maxTtl: 24h, rateLimit: { burst: 200 } }`));
  bundlePem = await readFile(join(cp.dataDir, 'bundle.pem'), 'utf8');
  anon = controlPlaneClients(cp.grpc, bundlePem);
  const caDir = join(cp.dataDir, 'ca');
  const state = JSON.parse(await readFile(join(caDir, 'ca-state.json'), 'utf8')) as { authorities: { state: string; intermediates: { certFile: string; keyFile: string }[] }[] };
  const active = state.authorities.find((a) => a.state === 'active')!;
  const inter = active.intermediates[active.intermediates.length - 1]!;
  signing = { cert: new X509Certificate(await readFile(join(caDir, inter.certFile))), key: keyPairFromPem(await readFile(join(caDir, inter.keyFile))) };
}, 60_000);

afterAll(async () => {
  anon?.close();
  const code = await cp?.stop();
  await cleanup?.();
  expect(code).toBe(0);
});

describe('reserved and meaningless IDs', () => {
  test.each([`spiffe://${TD}`, `spiffe://${TD}/tessera/control-plane`, 'spiffe://other.org/ns/a/sa/b'])('token create refuses %s with a stable code', async (id) => {
    const r = await tokenCreate(id);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('TESSERA_ERR_ISSUANCE_RESERVED_ID');
  });

  test.each([`spiffe://${TD}/`, `spiffe://${TD}//x`])('token create refuses %s as a usage error', async (id) => {
    const r = await tokenCreate(id);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
  });

  test('renewal with an SVID for the bare trust-domain ID is refused (the SVID verifier refuses it as a peer)', async () => {
    const svid = await svidFromTheRealCa(`spiffe://${TD}`);
    const r = await renew(svid);
    expect(r.res).toBeUndefined();
    expect(errorCode(r.err)).toBe('TESSERA_ERR_ATTESTATION_SVID_INVALID');
  });
});

describe('renewal refuses SVIDs RFC 5280 says to reject', () => {
  test('control: an SVID from the same CA without the extension renews', async () => {
    const r = await renew(await svidFromTheRealCa(WEB));
    expect(r.err).toBeNull();
    expect(r.res?.spiffe_id).toBe(WEB);
  });

  test('an SVID with an unknown critical extension is refused, coded and audited', async () => {
    const svid = await svidFromTheRealCa(WEB, { criticalOid: '1.3.6.1.4.1.55555.7.7' });
    const r = await renew(svid);
    expect(r.res).toBeUndefined();
    expect(errorCode(r.err)).toBe('TESSERA_ERR_ATTESTATION_SVID_INVALID');
    const serial = svid.leaf.serialNumber.toLowerCase();
    const refusal = (await audit()).find((e) => e['event'] === 'svid.refused' && e['code'] === 'TESSERA_ERR_ATTESTATION_SVID_INVALID' && e['svidCode'] === 'TESSERA_ERR_SVID_UNKNOWN_CRITICAL_EXTENSION');
    expect(refusal).toMatchObject({ reason: 'bad_svid', attestor: 'x509svid' });
    expect((await audit()).some((e) => e['event'] === 'svid.issued' && e['attestedAs'] === `x509svid:${serial}`)).toBe(false);
  });

  test('unrelated extra certificates: dropped by the TLS stack on renewal, refused where the whole chain is seen', async () => {
    const stranger = await TestCa.create({ trustDomain: TD });
    const svid = await svidFromTheRealCa(WEB);
    const withExtra = svid.chainPem + encodePem('CERTIFICATE', stranger.intermediate.cert.raw);
    // Over mTLS Node hands on only the issuer chain it built: the extra never reaches the verifier, so the
    // renewal is of the same ID, unchanged.
    const r = await renew({ ...svid, chainPem: withExtra });
    expect(r.err).toBeNull();
    expect(r.res?.spiffe_id).toBe(WEB);
    // `tessera svid verify` sees the chain as written and refuses it.
    await writeFile(join(dir, 'extra-chain.pem'), withExtra);
    const v = await tessera(['svid', 'verify', '--bundle', join(cp.dataDir, 'bundle.pem'), join(dir, 'extra-chain.pem')]);
    expect(v.code).toBe(1);
    expect(JSON.parse(v.stdout)).toMatchObject({ valid: false, code: 'TESSERA_ERR_SVID_UNRELATED_CERT' });
    await writeFile(join(dir, 'chain.pem'), svid.chainPem);
    expect((await tessera(['svid', 'verify', '--bundle', join(cp.dataDir, 'bundle.pem'), join(dir, 'chain.pem')])).code).toBe(0);
  });
});

describe('requested TTL', () => {
  test('a workload cannot extend its own credential past svid.ttl, whatever it asks for', async () => {
    const key = generateKeyPair();
    const first = await signSvid(anon.identity, { csr: await createCsr(key, {}), join_token: (await tokenCreate(WEB)).stdout.trim(), ttl_seconds: 99_999_999 });
    expect(first.err).toBeNull();
    const issued = new X509Certificate(first.res!.svid_chain[0]!);
    const life = (issued.validToDate.getTime() - Date.now()) / 1000;
    expect(life).toBeLessThanOrEqual(SVID_TTL_S + 1);
    expect(life).toBeGreaterThan(SVID_TTL_S - 60);
    // Renewal through the real gRPC API, authenticated by the SVID just issued, asking for a day.
    const current = { chainPem: first.res!.svid_chain.map((d) => encodePem('CERTIFICATE', d)).join(''), keyPem: privateKeyPem(key) };
    const renewed = await renew(current, { ttl_seconds: 86_400 });
    expect(renewed.err).toBeNull();
    const leaf = new X509Certificate(renewed.res!.svid_chain[0]!);
    expect((leaf.validToDate.getTime() - Date.now()) / 1000).toBeLessThanOrEqual(SVID_TTL_S + 1);
  });

  test('a shorter TTL is honoured', async () => {
    const r = await renew(await svidFromTheRealCa(WEB), { ttl_seconds: 120 });
    expect(r.err).toBeNull();
    const leaf = new X509Certificate(r.res!.svid_chain[0]!);
    const life = (leaf.validToDate.getTime() - Date.now()) / 1000;
    expect(life).toBeLessThanOrEqual(121);
    expect(life).toBeGreaterThan(60);
  });

  test('a TTL under twice svid.backdate (60 s here) is raised to it: ttl_seconds 1 is not an SVID expired on arrival (audit 55c F5)', async () => {
    const r = await renew(await svidFromTheRealCa(WEB), { ttl_seconds: 1 });
    expect(r.err).toBeNull();
    const leaf = new X509Certificate(r.res!.svid_chain[0]!);
    expect((leaf.validToDate.getTime() - leaf.validFromDate.getTime()) / 1000).toBeGreaterThanOrEqual(179);
    expect((leaf.validToDate.getTime() - Date.now()) / 1000).toBeGreaterThan(60);
  });
});

describe('admin.sock inputs are taken as JSON typed them', () => {
  /** The error code an admin.sock request ends with, or 'ok'. */
  const codeOf = (p: Promise<unknown>) =>
    p.then(
      () => 'ok',
      (e: { code?: string }) => e.code ?? 'uncoded',
    );
  const grant = { to: `spiffe://${TD}/ns/a/sa/b`, from: [`spiffe://${TD}/ns/c/sa/d`], forMs: 60_000, reason: 'r', createdBy: 't' };

  test('a number of milliseconds is a positive whole JSON number: "1e3", 0.5, [5], true, "60000" refused, coded', async () => {
    for (const ttlMs of ['1e3', 0.5, [5], true, '60000', -1, 0]) {
      expect(await codeOf(adminRequest(cp.dataDir, 'POST', '/v1/tokens', { spiffeId: WEB, ttlMs })), JSON.stringify(ttlMs)).toBe('TESSERA_ERR_CP_ADMIN_BAD_REQUEST');
    }
    expect(await codeOf(adminRequest(cp.dataDir, 'POST', '/v1/tokens', { spiffeId: WEB, ttlMs: 60_000 }))).toBe('ok');
    for (const forMs of ['60000', [60_000], 1.5]) expect(await codeOf(adminRequest(cp.dataDir, 'POST', '/v1/break-glass', { ...grant, forMs })), JSON.stringify(forMs)).toBe('TESSERA_ERR_CP_ADMIN_BAD_REQUEST');
    expect(await codeOf(adminRequest(cp.dataDir, 'GET', '/v1/certs?expiringWithinMs=1e3'))).toBe('TESSERA_ERR_CP_ADMIN_BAD_REQUEST');
  });

  test('strings are strings and lists of strings: an object is refused with a coded 400, never an internal error', async () => {
    for (const from of [[{ toString: 1 }], 'spiffe://x/y', [1]]) {
      expect(await codeOf(adminRequest(cp.dataDir, 'POST', '/v1/break-glass', { ...grant, from })), JSON.stringify(from)).toBe('TESSERA_ERR_CP_ADMIN_BAD_REQUEST');
    }
    for (const body of [{ ...grant, to: { a: 1 } }, { ...grant, reason: ['x'] }]) expect(await codeOf(adminRequest(cp.dataDir, 'POST', '/v1/break-glass', body))).toBe('TESSERA_ERR_CP_ADMIN_BAD_REQUEST');
    expect(await codeOf(adminRequest(cp.dataDir, 'POST', '/v1/revocations', { kind: 'serial', value: { v: 1 } }))).toBe('TESSERA_ERR_CP_ADMIN_BAD_REQUEST');
    expect(await codeOf(adminRequest(cp.dataDir, 'POST', '/v1/tokens/revoke', { tokenId: 12 }))).toBe('TESSERA_ERR_CP_ADMIN_BAD_REQUEST');
  });
});
