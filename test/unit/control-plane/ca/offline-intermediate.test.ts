// The checks a root-signed intermediate passes before the control plane signs with it, one fault at a time: each
// refused with its own code and reason, the first fault in a fixed order; and the CSR the request sends out.

import { X509Certificate } from 'node:crypto';
import { describe, expect, test, vi } from 'vitest';
import { isTesseraError, TesseraError } from '../../../../common/errors.js';
import { type CertificateTemplate, issueCertificate } from '../../../../common/pki/cert-builder.js';
import { parseCsr } from '../../../../common/pki/csr-parse.js';
import { generateKeyPair, type KeyPair } from '../../../../common/pki/keys.js';
import { decodePem, encodePem } from '../../../../common/pki/pem.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { caCertFromPem } from '../../../../control-plane/src/ca/authority-material.js';
import { checkSignedIntermediate, type IntermediateToCheck, installRefusalReason, intermediateCsrPem } from '../../../../control-plane/src/ca/offline-intermediate.js';
import { EKU, type Forged, type ForgeTemplate, forgeCertificate, forgeKey } from '../../../helpers/cert-forge.js';

const TD = TrustDomain.parse('example.org');
const NOW = Date.UTC(2026, 5, 1);
const DAY = 86_400_000;
const pem = (c: X509Certificate) => encodePem('CERTIFICATE', c.raw);

interface Root {
  readonly cert: X509Certificate;
  readonly key: KeyPair;
}

async function root(over: Partial<CertificateTemplate> = {}): Promise<Root> {
  const key = generateKeyPair('ec-p256');
  const cert = await issueCertificate({
    subject: 'CN=Example Root, O=Example',
    publicKey: key.publicKey,
    signer: key,
    notBefore: new Date(NOW - DAY),
    notAfter: new Date(NOW + 365 * DAY),
    basicConstraints: { ca: true },
    keyUsage: ['keyCertSign', 'cRLSign'],
    ...over,
  });
  return { cert, key };
}

function intermediate(r: Root, key: KeyPair, over: Partial<CertificateTemplate> = {}): Promise<X509Certificate> {
  return issueCertificate({
    subject: 'CN=Tessera intermediate example.org, O=Tessera',
    publicKey: key.publicKey,
    issuer: r.cert,
    signer: r.key,
    notBefore: new Date(NOW - 60_000),
    notAfter: new Date(NOW + 30 * DAY),
    basicConstraints: { ca: true, pathLength: 0 },
    keyUsage: ['keyCertSign', 'cRLSign'],
    uriSans: [TD.idString()],
    ...over,
  });
}

function refusal(i: IntermediateToCheck): { code: string; reason: string; message: string } {
  try {
    checkSignedIntermediate(i);
  } catch (e) {
    if (!isTesseraError(e)) throw e;
    return { code: e.code, reason: installRefusalReason(e), message: e.message };
  }
  throw new Error('accepted');
}

describe('checkSignedIntermediate', () => {
  test('accepts an intermediate of the pending key, signed by the root, for exactly this trust domain; a root without any URI SAN is fine', async () => {
    const r = await root();
    const key = generateKeyPair();
    const int = await intermediate(r, key);
    const ok = checkSignedIntermediate({ intermediatePem: pem(int), rootPem: pem(r.cert), key, trustDomain: TD, nowMs: NOW });
    expect(ok.intermediate.serialNumber).toBe(int.serialNumber);
    expect(ok.root.fingerprint256).toBe(r.cert.fingerprint256);
    // An upstream answering with the chain (intermediate, then the root) is the same thing.
    expect(checkSignedIntermediate({ intermediatePem: pem(int) + pem(r.cert), rootPem: pem(r.cert), key, trustDomain: TD, nowMs: NOW }).intermediate.raw.equals(int.raw)).toBe(true);
  });

  test('each fault is refused with its own code and reason', async () => {
    const r = await root();
    const other = await root({ subject: 'CN=Example Root, O=Example' });
    const key = generateKeyPair();
    const good = await intermediate(r, key);
    const base = { rootPem: pem(r.cert), key, trustDomain: TD, nowMs: NOW };
    const cases: [string, IntermediateToCheck, string, string][] = [
      ['another key (made from another CSR)', { ...base, intermediatePem: pem(await intermediate(r, generateKeyPair())) }, 'TESSERA_ERR_CA_INTERMEDIATE_KEY_MISMATCH', 'key_mismatch'],
      ['signed by another root with the same name', { ...base, intermediatePem: pem(await intermediate(other, key)) }, 'TESSERA_ERR_CA_INTERMEDIATE_NOT_SIGNED', 'not_signed_by_root'],
      ['a URI SAN of another trust domain', { ...base, intermediatePem: pem(await intermediate(r, key, { uriSans: ['spiffe://other.org'] })) }, 'TESSERA_ERR_CA_INTERMEDIATE_WRONG_NAME', 'wrong_name'],
      ['a URI SAN with a path', { ...base, intermediatePem: pem(await intermediate(r, key, { uriSans: ['spiffe://example.org/ns/x'] })) }, 'TESSERA_ERR_CA_INTERMEDIATE_WRONG_NAME', 'wrong_name'],
      ['no URI SAN', { ...base, intermediatePem: pem(await intermediate(r, key, { uriSans: [] })) }, 'TESSERA_ERR_CA_INTERMEDIATE_WRONG_NAME', 'wrong_name'],
      ['two URI SANs', { ...base, intermediatePem: pem(await intermediate(r, key, { uriSans: [TD.idString(), 'spiffe://other.org'] })) }, 'TESSERA_ERR_CA_INTERMEDIATE_WRONG_NAME', 'wrong_name'],
      ['not a CA', { ...base, intermediatePem: pem(await intermediate(r, key, { basicConstraints: { ca: false } })) }, 'TESSERA_ERR_CA_INTERMEDIATE_NOT_CA', 'not_ca'],
      ['no keyCertSign', { ...base, intermediatePem: pem(await intermediate(r, key, { keyUsage: ['digitalSignature'] })) }, 'TESSERA_ERR_CA_INTERMEDIATE_NOT_CA', 'not_ca'],
      ['an unknown critical extension', { ...base, intermediatePem: pem(await intermediate(r, key, { extraExtensions: [{ oid: '1.3.6.1.4.1.99999.1', critical: true, value: Uint8Array.of(0x05, 0x00) }] })) }, 'TESSERA_ERR_CA_INTERMEDIATE_NOT_CA', 'not_ca'],
      ['expired', { ...base, intermediatePem: pem(good), nowMs: NOW + 31 * DAY }, 'TESSERA_ERR_CA_INTERMEDIATE_EXPIRED', 'expired'],
      ['not yet valid', { ...base, intermediatePem: pem(await intermediate(r, key, { notBefore: new Date(NOW + DAY) })) }, 'TESSERA_ERR_CA_INTERMEDIATE_NOT_YET_VALID', 'not_yet_valid'],
      ['no pending request', { ...base, key: null, intermediatePem: pem(good) }, 'TESSERA_ERR_CA_NO_PENDING_REQUEST', 'no_pending_request'],
      ['the intermediate given as the root (not self-signed)', { ...base, rootPem: pem(good), intermediatePem: pem(good) }, 'TESSERA_ERR_CA_ROOT_INVALID', 'root_invalid'],
      ['a root that is not a CA', { ...base, rootPem: pem((await root({ basicConstraints: { ca: false } })).cert), intermediatePem: pem(good) }, 'TESSERA_ERR_CA_ROOT_INVALID', 'root_invalid'],
      ['a root with pathlen 0', { ...base, rootPem: pem((await root({ basicConstraints: { ca: true, pathLength: 0 } })).cert), intermediatePem: pem(good) }, 'TESSERA_ERR_CA_ROOT_INVALID', 'root_invalid'],
      ['a root naming another trust domain', { ...base, rootPem: pem((await root({ uriSans: ['spiffe://other.org'] })).cert), intermediatePem: pem(good) }, 'TESSERA_ERR_CA_INTERMEDIATE_WRONG_NAME', 'wrong_name'],
      ['not PEM', { ...base, intermediatePem: 'hello' }, 'TESSERA_ERR_CA_INTERMEDIATE_MALFORMED', 'malformed'],
      ['a CSR instead of a certificate', { ...base, intermediatePem: await intermediateCsrPem(key, TD, NOW) }, 'TESSERA_ERR_CA_INTERMEDIATE_MALFORMED', 'malformed'],
      ['two roots in the root file', { ...base, rootPem: pem(r.cert) + pem(other.cert), intermediatePem: pem(good) }, 'TESSERA_ERR_CA_INTERMEDIATE_MALFORMED', 'malformed'],
      ['a deeper chain', { ...base, intermediatePem: pem(good) + pem(other.cert) }, 'TESSERA_ERR_CA_INTERMEDIATE_MALFORMED', 'malformed'],
    ];
    for (const [what, input, code, reason] of cases) expect(refusal(input), what).toMatchObject({ code, reason });
    // Audit 62h F4: CA:TRUE without keyCertSign, which Node reads as no CA, is named for what it lacks.
    expect(refusal({ ...base, intermediatePem: pem(await intermediate(r, key, { keyUsage: ['digitalSignature'] })) }).message).toContain('the intermediate lacks keyUsage keyCertSign');
    expect(refusal({ ...base, rootPem: pem((await root({ keyUsage: ['digitalSignature'] })).cert), intermediatePem: pem(good) }).message).toContain('the root lacks keyUsage keyCertSign');
  });

  test('a CA file of a read-only Secret with CA:TRUE and no keyCertSign is named for what it lacks (audit 62h F4)', async () => {
    const r = await root({ keyUsage: ['digitalSignature'] });
    expect(() => caCertFromPem(pem(r.cert), '/ca/root-cert.pem')).toThrow('/ca/root-cert.pem lacks keyUsage keyCertSign');
    const notCa = await root({ basicConstraints: { ca: false } });
    expect(() => caCertFromPem(pem(notCa.cert), '/ca/root-cert.pem')).toThrow('is not a CA certificate');
  });

  // What every proxy's verifier (and OpenSSL) asks of a CA on an SVID's path, asked at install: a CA that would make
  // every SVID it signs unverifiable is refused here rather than activated (an outside audit activated both).
  test('an intermediate or root the SVID verifier would refuse: weak signature or key, or an extendedKeyUsage without the TLS purposes', async () => {
    const r = await root();
    const signer: Forged = { cert: r.cert, privateKey: r.key.privateKey };
    const key = generateKeyPair();
    const at = { notBefore: new Date(NOW - 60_000), notAfter: new Date(NOW + 30 * DAY) };
    const forgedInt = (o: Partial<ForgeTemplate> = {}, issuer = signer) => pem(forgeCertificate({ cn: 'Tessera intermediate', key, issuer, ca: true, pathLen: 0, uriSans: [TD.idString()], ...at, ...o }).cert);
    const base = { rootPem: pem(r.cert), key, trustDomain: TD, nowMs: NOW };
    // The forged base passes: each case below changes one thing of it.
    expect(() => checkSignedIntermediate({ ...base, intermediatePem: forgedInt() })).not.toThrow();
    expect(() => checkSignedIntermediate({ ...base, intermediatePem: forgedInt({ extKeyUsage: [EKU.serverAuth, EKU.clientAuth] }) })).not.toThrow();
    const weakRoot = forgeCertificate({ cn: 'Weak Root', key: forgeKey('rsa-1024'), ca: true, ...at });
    const ekuRoot = forgeCertificate({ cn: 'Code Root', key: forgeKey('ec-p256'), ca: true, extKeyUsage: [EKU.codeSigning], ...at });
    const ncRoot = forgeCertificate({ cn: 'Other Root', key: forgeKey('ec-p256'), ca: true, nameConstraints: { permitted: [{ uri: 'other.org' }] }, ...at });
    // Constraints that allow the trust domain are fine (RFC 5280 asks CAs to mark them critical: understood here).
    expect(() => checkSignedIntermediate({ ...base, intermediatePem: forgedInt({ nameConstraints: { permitted: [{ uri: 'example.org' }] } }) })).not.toThrow();
    const cases: [string, IntermediateToCheck, string, string, string][] = [
      ['signed with ecdsa-with-SHA1', { ...base, intermediatePem: forgedInt({ signature: 'ecdsa-sha1' }) }, 'TESSERA_ERR_CA_INTERMEDIATE_WEAK', 'weak', 'ecdsa-with-SHA1'],
      ['codeSigning only', { ...base, intermediatePem: forgedInt({ extKeyUsage: [EKU.codeSigning] }) }, 'TESSERA_ERR_CA_INTERMEDIATE_BAD_EKU', 'bad_eku', 'serverAuth and clientAuth'],
      ['serverAuth only', { ...base, intermediatePem: forgedInt({ extKeyUsage: [EKU.serverAuth] }) }, 'TESSERA_ERR_CA_INTERMEDIATE_BAD_EKU', 'bad_eku', 'clientAuth'],
      ['a root with an RSA-1024 key', { ...base, rootPem: pem(weakRoot.cert), intermediatePem: forgedInt({}, weakRoot) }, 'TESSERA_ERR_CA_INTERMEDIATE_WEAK', 'weak', 'the root'],
      ['a root for code signing only', { ...base, rootPem: pem(ekuRoot.cert), intermediatePem: forgedInt({}, ekuRoot) }, 'TESSERA_ERR_CA_INTERMEDIATE_BAD_EKU', 'bad_eku', 'the root'],
      ['name constraints that exclude the trust domain', { ...base, intermediatePem: forgedInt({ nameConstraints: { excluded: [{ uri: 'example.org' }] } }) }, 'TESSERA_ERR_CA_INTERMEDIATE_NAME_CONSTRAINTS', 'name_constraints', 'excluded subtree'],
      ['name constraints that permit another trust domain only', { ...base, intermediatePem: forgedInt({ nameConstraints: { permitted: [{ uri: 'other.org' }] } }) }, 'TESSERA_ERR_CA_INTERMEDIATE_NAME_CONSTRAINTS', 'name_constraints', 'permitted'],
      ['a root whose name constraints permit another trust domain only', { ...base, rootPem: pem(ncRoot.cert), intermediatePem: forgedInt({}, ncRoot) }, 'TESSERA_ERR_CA_INTERMEDIATE_NAME_CONSTRAINTS', 'name_constraints', 'the root'],
    ];
    for (const [what, input, code, reason, text] of cases) expect(refusal(input), what).toMatchObject({ code, reason, message: expect.stringContaining(text) });
  });

  // Audit 56a F2: the root's self-signature was checked with its key before any rule looked at the key, ~9 ms for an
  // RSA public exponent of 3,070 bits (and such a root was then accepted). The exponent's bound comes first now.
  test('a root whose RSA key has a 3,070-bit public exponent is refused as weak before any signature is checked with it', () => {
    const at = { notBefore: new Date(NOW - DAY), notAfter: new Date(NOW + 365 * DAY) };
    const hugeRoot = forgeCertificate({ cn: 'Huge Root', key: forgeKey('rsa-3072-e3070'), ca: true, ...at });
    const key = generateKeyPair();
    const int = forgeCertificate({ cn: 'Tessera intermediate', key, issuer: hugeRoot, ca: true, pathLen: 0, uriSans: [TD.idString()], ...at });
    expect(int.cert.verify(hugeRoot.cert.publicKey)).toBe(true);
    const verify = vi.spyOn(X509Certificate.prototype, 'verify');
    try {
      const got = refusal({ intermediatePem: pem(int.cert), rootPem: pem(hugeRoot.cert), key, trustDomain: TD, nowMs: NOW });
      expect(got).toMatchObject({ code: 'TESSERA_ERR_CA_INTERMEDIATE_WEAK', reason: 'weak', message: expect.stringContaining('the root: an RSA key with a public exponent of 3070 bits (at most 2^31-1)') });
      expect(verify).not.toHaveBeenCalled();
    } finally {
      verify.mockRestore();
    }
  });

  test('a root naming this trust domain is accepted; an expired root is refused as expired, naming the root', async () => {
    const r = await root({ uriSans: [TD.idString()] });
    const key = generateKeyPair();
    const int = await intermediate(r, key);
    expect(() => checkSignedIntermediate({ intermediatePem: pem(int), rootPem: pem(r.cert), key, trustDomain: TD, nowMs: NOW })).not.toThrow();
    // The same root, expired: the chain holds, the validity does not.
    const late = { ...r, cert: await issueCertificate({ subject: 'CN=Example Root, O=Example', publicKey: r.key.publicKey, signer: r.key, notBefore: new Date(NOW - 2 * DAY), notAfter: new Date(NOW - DAY), basicConstraints: { ca: true }, keyUsage: ['keyCertSign'] }) };
    expect(refusal({ intermediatePem: pem(await intermediate(late, key)), rootPem: pem(late.cert), key, trustDomain: TD, nowMs: NOW })).toMatchObject({ code: 'TESSERA_ERR_CA_INTERMEDIATE_EXPIRED', message: expect.stringContaining('root') });
  });

  // Audit 38c F3: a 30-day intermediate of a root with minutes left was installed; the mesh died at the root's date.
  test("an intermediate that outlives its root is refused (outlives_root), by a second or by years; one that ends with it is accepted", async () => {
    const r = await root({ notAfter: new Date(NOW + 10 * DAY) });
    const key = generateKeyPair();
    const rootEnd = r.cert.validToDate.getTime();
    for (const notAfter of [rootEnd + 1000, rootEnd + DAY, rootEnd + 20 * 365 * DAY]) {
      const int = await intermediate(r, key, { notAfter: new Date(notAfter) });
      expect(refusal({ intermediatePem: pem(int), rootPem: pem(r.cert), key, trustDomain: TD, nowMs: NOW }), new Date(notAfter).toISOString()).toMatchObject({
        code: 'TESSERA_ERR_CA_INTERMEDIATE_OUTLIVES_ROOT',
        reason: 'outlives_root',
        message: expect.stringContaining(r.cert.validToDate.toISOString()),
      });
    }
    for (const notAfter of [rootEnd, rootEnd - DAY]) {
      const int = await intermediate(r, key, { notAfter: new Date(notAfter) });
      expect(() => checkSignedIntermediate({ intermediatePem: pem(int), rootPem: pem(r.cert), key, trustDomain: TD, nowMs: NOW })).not.toThrow();
    }
  });

  test('the reason label of a lifecycle refusal is its code, shortened; anything else is "internal"', () => {
    expect(installRefusalReason(new TesseraError('TESSERA_ERR_CA_ALREADY_PREPARED'))).toBe('already_prepared');
    expect(installRefusalReason(new TesseraError('TESSERA_ERR_CA_READ_ONLY'))).toBe('read_only');
    expect(installRefusalReason(new Error('x'))).toBe('internal');
  });
});

describe('intermediateCsrPem', () => {
  test('a PKCS#10 request signed by the key, for the bare trust-domain ID, asking for CA rights; no private key in it', async () => {
    const key = generateKeyPair();
    const text = await intermediateCsrPem(key, TD, NOW);
    expect(decodePem(text).map((b) => b.label)).toEqual(['CERTIFICATE REQUEST']);
    expect(text).not.toContain('PRIVATE KEY');
    const csr = await parseCsr(decodePem(text)[0]!.der);
    expect(csr.uriSans).toEqual(['spiffe://example.org']);
    expect(csr.requestsCa).toBe(true);
    expect(csr.publicKey.export({ type: 'spki', format: 'der' }).equals(key.publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
  });
});
