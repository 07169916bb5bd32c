import { beforeAll, describe, expect, test } from 'vitest';
import { X509Certificate } from 'node:crypto';
import type { ErrorCode } from '../../../../common/errors.js';
import { SpiffeId } from '../../../../common/spiffe/spiffe-id.js';
import { TrustBundle, TrustBundleSet } from '../../../../common/spiffe/trust-bundle.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { checkIssuableId, reservedIdReason } from '../../../../common/spiffe/workload-id.js';
import { readCertFields } from '../../../../common/spiffe/x509-fields.js';
import { type SvidFailureReason, leafSpiffeId, verifyX509Svid } from '../../../../common/spiffe/x509-svid.js';
import { issueCertificate } from '../../../../common/pki/cert-builder.js';
import { DerError } from '../../../../common/pki/der.js';
import { generateKeyPair } from '../../../../common/pki/keys.js';
import { EKU, type ForgeTemplate, type Forged, forgeCertificate, forgeKey } from '../../../helpers/cert-forge.js';
import { type BrokenKind, TestCa } from '../../../helpers/test-ca.js';

const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const ID = 'spiffe://example.org/ns/default/sa/web';
let ca: TestCa;
let other: TestCa;
let bundles: TrustBundleSet;

beforeAll(async () => {
  ca = await TestCa.create({ trustDomain: 'example.org', nowMs: NOW });
  other = await TestCa.create({ trustDomain: 'other.org', nowMs: NOW });
  bundles = new TrustBundleSet([
    TrustBundle.parse('example.org', ca.bundlePem()),
    TrustBundle.parse('other.org', other.bundlePem()),
  ]);
});

describe('verifyX509Svid', () => {
  test('a valid SVID with an intermediate verifies to its ID', async () => {
    const s = await ca.mintSvid(ID);
    const r = verifyX509Svid(s.chain, bundles, { nowMs: NOW });
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.id.toString()).toBe(ID);
      expect(r.path).toHaveLength(3);
      expect(r.notAfterMs).toBe(s.leaf.validToDate.getTime());
    }
  });

  test('a leaf signed directly by the root verifies', async () => {
    const s = await ca.mintSvid(ID, { direct: true });
    expect(verifyX509Svid(s.chain, bundles, { nowMs: NOW }).ok).toBe(true);
  });

  test('RSA-2048 SVIDs verify too', async () => {
    const rsa = await TestCa.create({ trustDomain: 'example.org', nowMs: NOW, algorithm: 'rsa-2048' });
    const s = await rsa.mintSvid(ID);
    const r = verifyX509Svid(s.chain, new TrustBundleSet([TrustBundle.parse('example.org', rsa.bundlePem())]), { nowMs: NOW });
    expect(r.ok).toBe(true);
  });

  test('DER bytes are accepted as well as X509Certificate objects', async () => {
    const s = await ca.mintSvid(ID);
    expect(verifyX509Svid(s.chain.map((c) => c.raw), bundles, { nowMs: NOW }).ok).toBe(true);
  });

  const broken: [BrokenKind, SvidFailureReason, ErrorCode][] = [
    ['ca-leaf', 'bad_svid', 'TESSERA_ERR_SVID_LEAF_IS_CA'],
    ['two-uri-sans', 'bad_svid', 'TESSERA_ERR_SVID_MULTIPLE_URI_SANS'],
    ['no-uri-san', 'bad_svid', 'TESSERA_ERR_SVID_NO_URI_SAN'],
    ['key-cert-sign', 'bad_svid', 'TESSERA_ERR_SVID_LEAF_KEY_CERT_SIGN'],
    ['crl-sign', 'bad_svid', 'TESSERA_ERR_SVID_LEAF_CRL_SIGN'],
    ['no-digital-signature', 'bad_svid', 'TESSERA_ERR_SVID_NO_DIGITAL_SIGNATURE'],
    ['bad-signature', 'bad_signature', 'TESSERA_ERR_SVID_BAD_SIGNATURE'],
    ['non-spiffe-uri', 'bad_svid', 'TESSERA_ERR_SVID_NOT_SPIFFE_ID'],
  ];
  test.each(broken)('broken kind %s -> %s / %s', async (kind, reason, code) => {
    const s = await ca.mintSvid(ID, { broken: kind });
    const r = verifyX509Svid(s.chain, bundles, { nowMs: NOW });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.reason).toBe(reason);
      expect(r.code).toBe(code);
    }
  });

  test('expired leaf', async () => {
    const s = await ca.mintSvid(ID, { notBefore: new Date(NOW - 7_200_000), notAfter: new Date(NOW - 1) });
    const r = verifyX509Svid(s.chain, bundles, { nowMs: NOW });
    expect(r).toMatchObject({ ok: false, reason: 'expired', code: 'TESSERA_ERR_SVID_EXPIRED' });
  });

  test('not yet valid leaf', async () => {
    const s = await ca.mintSvid(ID, { notBefore: new Date(NOW + 60_000), notAfter: new Date(NOW + 3_600_000) });
    const r = verifyX509Svid(s.chain, bundles, { nowMs: NOW });
    expect(r).toMatchObject({ ok: false, reason: 'not_yet_valid', code: 'TESSERA_ERR_SVID_NOT_YET_VALID' });
  });

  test('validity is judged at the injected time, not the wall clock', async () => {
    const s = await ca.mintSvid(ID);
    expect(verifyX509Svid(s.chain, bundles, { nowMs: NOW + 2 * 3_600_000 }).ok).toBe(false);
    expect(verifyX509Svid(s.chain, bundles, { nowMs: NOW + 30 * 60_000 }).ok).toBe(true);
  });

  test("an expired intermediate fails the chain even when the leaf is in date", async () => {
    const s = await ca.mintSvid(ID, { notAfter: new Date(NOW + 20 * 3_600_000) });
    const r = verifyX509Svid(s.chain, bundles, { nowMs: NOW + 13 * 3_600_000 });
    expect(r).toMatchObject({ ok: false, reason: 'expired' });
  });

  test("another trust domain's CA cannot mint IDs of this one", async () => {
    const forged = await other.mintSvid(ID);
    const r = verifyX509Svid(forged.chain, bundles, { nowMs: NOW });
    expect(r).toMatchObject({ ok: false, reason: 'wrong_trust_domain', code: 'TESSERA_ERR_SVID_WRONG_TRUST_DOMAIN' });
  });

  test('unknown CA', async () => {
    const stranger = await TestCa.create({ trustDomain: 'example.org', nowMs: NOW });
    const s = await stranger.mintSvid(ID);
    const r = verifyX509Svid(s.chain, bundles, { nowMs: NOW });
    expect(r).toMatchObject({ ok: false, reason: 'unknown_ca', code: 'TESSERA_ERR_SVID_UNKNOWN_CA' });
  });

  test('no bundle for the trust domain', async () => {
    const s = await ca.mintSvid(ID);
    const r = verifyX509Svid(s.chain, new TrustBundleSet([TrustBundle.parse('other.org', other.bundlePem())]), { nowMs: NOW });
    // The chain leads to no authority of other.org either, so it is unknown, with the missing bundle named.
    expect(r).toMatchObject({ ok: false, reason: 'unknown_ca', code: 'TESSERA_ERR_SVID_NO_BUNDLE' });
  });

  test('an intermediate that is not a CA is refused', async () => {
    // An "intermediate" without basicConstraints or keyUsage: OpenSSL name-chains to it, but it is not a CA.
    const fk = generateKeyPair();
    const fakeCert = await issueCertificate({
      subject: 'CN=Not A CA', publicKey: fk.publicKey, issuer: ca.intermediate.cert, signer: ca.intermediate.key,
      notBefore: new Date(NOW - 1000), notAfter: new Date(NOW + 60_000), basicConstraints: null, keyUsage: null,
    });
    const fake = { leaf: fakeCert, key: fk };
    const k = generateKeyPair();
    const leaf = await issueCertificate({
      subject: 'O=x', publicKey: k.publicKey, issuer: fake.leaf, signer: fake.key,
      notBefore: new Date(NOW - 1000), notAfter: new Date(NOW + 60_000),
      basicConstraints: { ca: false }, keyUsage: ['digitalSignature'], uriSans: [ID],
    });
    const r = verifyX509Svid([leaf, fake.leaf, ca.intermediate.cert], bundles, { nowMs: NOW });
    expect(r).toMatchObject({ ok: false, code: 'TESSERA_ERR_SVID_INTERMEDIATE_NOT_CA' });
  });

  test('empty chain and garbage', () => {
    expect(verifyX509Svid([], bundles, { nowMs: NOW })).toMatchObject({ ok: false, reason: 'no_client_cert' });
    expect(verifyX509Svid([Buffer.from('garbage')], bundles, { nowMs: NOW })).toMatchObject({ ok: false, code: 'TESSERA_ERR_SVID_MALFORMED' });
  });

  test('expected ID (secure naming): the same ID passes; another is refused with a reason naming both', async () => {
    const s = await ca.mintSvid(ID);
    expect(verifyX509Svid(s.chain, bundles, { nowMs: NOW, expectedId: SpiffeId.parse(ID) }).ok).toBe(true);
    const api = 'spiffe://example.org/ns/default/sa/api';
    const r = verifyX509Svid(s.chain, bundles, { nowMs: NOW, expectedId: SpiffeId.parse(api) });
    expect(r).toMatchObject({ ok: false, reason: 'id_mismatch', code: 'TESSERA_ERR_SVID_ID_MISMATCH', claimedId: SpiffeId.parse(ID) });
    expect(!r.ok && r.message).toContain(`(got "${ID}", want "${api}")`);
  });

  test('a bundle holding old and new roots with the same name verifies SVIDs from both (CA rotation)', async () => {
    const name = 'CN=Rotating Root, O=Tessera Test';
    const oldCa = await TestCa.create({ nowMs: NOW, rootName: name });
    const newCa = await TestCa.create({ nowMs: NOW, rootName: name });
    const both = new TrustBundleSet([TrustBundle.parse('example.org', oldCa.bundlePem() + newCa.bundlePem())]);
    expect(verifyX509Svid((await oldCa.mintSvid(ID)).chain, both, { nowMs: NOW }).ok).toBe(true);
    expect(verifyX509Svid((await newCa.mintSvid(ID)).chain, both, { nowMs: NOW }).ok).toBe(true);
  });
});

describe('TrustBundle', () => {
  test('fingerprints are SHA-256 hex, duplicates collapse, PEM round-trips', () => {
    const b = TrustBundle.parse('example.org', ca.bundlePem() + ca.bundlePem());
    expect(b.authorities).toHaveLength(1);
    expect(b.fingerprints()[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(TrustBundle.parse('example.org', b.toPem()).fingerprints()).toEqual(b.fingerprints());
  });
  test('DER input works', () => {
    expect(TrustBundle.parse('example.org', ca.root.cert.raw).authorities).toHaveLength(1);
  });
  test('a leaf is refused as an authority; empty bundles are refused', async () => {
    const s = await ca.mintSvid(ID);
    expect(() => TrustBundle.parse('example.org', s.chainPem.split('-----END CERTIFICATE-----')[0] + '-----END CERTIFICATE-----\n')).toThrowError(
      expect.objectContaining({ code: 'TESSERA_ERR_BUNDLE_NOT_CA' }),
    );
    expect(() => new TrustBundle(bundles.get('example.org')!.trustDomain, [])).toThrowError(expect.objectContaining({ code: 'TESSERA_ERR_BUNDLE_EMPTY' }));
  });
  test('set lists trust domains and all authorities', () => {
    expect(bundles.trustDomains()).toEqual(['example.org', 'other.org']);
    expect(bundles.allAuthoritiesPem()).toHaveLength(2);
    expect(new X509Certificate(bundles.allAuthoritiesPem()[0]!).ca).toBe(true);
  });
});

// The hostile-certificate families of the Hardening issue: unknown critical extensions (leaf and intermediate),
// duplicate extensions, unrelated extra certificates, the bare trust-domain ID, hostile URI SAN strings read
// from DER, and the one workload-ID rule the control plane applies.
describe('RFC 5280 extension rules', () => {
  test('a leaf with an unknown critical extension is refused', async () => {
    const s = await ca.mintSvid(ID, { broken: 'unknown-critical' });
    expect(readCertFields(s.leaf.raw).unknownCritical).toEqual(['1.3.6.1.4.1.55555.1.1']);
    expect(verifyX509Svid(s.chain, bundles, { nowMs: NOW })).toMatchObject({ ok: false, reason: 'bad_svid', code: 'TESSERA_ERR_SVID_UNKNOWN_CRITICAL_EXTENSION' });
  });

  test('the same unknown extension, not critical, is fine', async () => {
    const k = generateKeyPair();
    const leaf = await issueCertificate({
      subject: 'O=x', publicKey: k.publicKey, issuer: ca.intermediate.cert, signer: ca.intermediate.key, notBefore: new Date(NOW - 1000), notAfter: new Date(NOW + 60_000),
      basicConstraints: { ca: false }, keyUsage: ['digitalSignature'], uriSans: [ID], extraExtensions: [{ oid: '1.3.6.1.4.1.55555.1.1', critical: false, value: Uint8Array.of(0x05, 0x00) }],
    });
    expect(verifyX509Svid([leaf, ca.intermediate.cert], bundles, { nowMs: NOW }).ok).toBe(true);
  });

  test('an intermediate with an unknown critical extension is refused', async () => {
    const ik = generateKeyPair();
    const inter = await issueCertificate({
      subject: 'CN=Odd Intermediate', publicKey: ik.publicKey, issuer: ca.root.cert, signer: ca.root.key, notBefore: new Date(NOW - 1000), notAfter: new Date(NOW + 60_000),
      basicConstraints: { ca: true }, keyUsage: ['keyCertSign'], extraExtensions: [{ oid: '1.3.6.1.4.1.55555.1.2', critical: true, value: Uint8Array.of(0x05, 0x00) }],
    });
    const k = generateKeyPair();
    const leaf = await issueCertificate({
      subject: 'O=x', publicKey: k.publicKey, issuer: inter, signer: ik, notBefore: new Date(NOW - 1000), notAfter: new Date(NOW + 60_000),
      basicConstraints: { ca: false }, keyUsage: ['digitalSignature'], uriSans: [ID],
    });
    expect(verifyX509Svid([leaf, inter], bundles, { nowMs: NOW })).toMatchObject({ ok: false, code: 'TESSERA_ERR_SVID_UNKNOWN_CRITICAL_EXTENSION' });
  });

  test('a second subjectAltName extension is malformed, not "the last one wins"', async () => {
    const s = await ca.mintSvid(ID, { broken: 'duplicate-san' });
    expect(verifyX509Svid(s.chain, bundles, { nowMs: NOW })).toMatchObject({ ok: false, code: 'TESSERA_ERR_SVID_MALFORMED' });
  });
});

describe('unrelated extra certificates', () => {
  test("another trust domain's intermediate appended to a valid chain is refused", async () => {
    const s = await ca.mintSvid(ID, { extraChain: [other.intermediate.cert] });
    expect(verifyX509Svid(s.chain, bundles, { nowMs: NOW })).toMatchObject({ ok: false, code: 'TESSERA_ERR_SVID_UNRELATED_CERT' });
  });

  test('an unrelated leaf or a stranger CA between the real certificates is refused', async () => {
    const stranger = await TestCa.create({ trustDomain: 'example.org', nowMs: NOW, rootName: 'CN=Stranger' });
    const junk = await stranger.mintSvid('spiffe://example.org/x');
    const s = await ca.mintSvid(ID);
    for (const chain of [[s.leaf, junk.leaf, ca.intermediate.cert], [s.leaf, stranger.intermediate.cert, ca.intermediate.cert]]) {
      expect(verifyX509Svid(chain, bundles, { nowMs: NOW })).toMatchObject({ ok: false, code: 'TESSERA_ERR_SVID_UNRELATED_CERT' });
    }
  });

  test('the root of the bundle sent along (as TLS stacks do) is not unrelated', async () => {
    const s = await ca.mintSvid(ID, { extraChain: [ca.root.cert] });
    expect(verifyX509Svid(s.chain, bundles, { nowMs: NOW }).ok).toBe(true);
  });
});

describe('reserved and meaningless IDs', () => {
  test('an SVID for the bare trust-domain ID is refused', async () => {
    const s = await ca.mintSvid('spiffe://example.org');
    expect(verifyX509Svid(s.chain, bundles, { nowMs: NOW })).toMatchObject({ ok: false, reason: 'bad_svid', code: 'TESSERA_ERR_SVID_NOT_WORKLOAD_ID' });
  });

  test.each(['spiffe://example.org/', 'spiffe://example.org//x', 'spiffe://example.org/a/'])('an SVID for %s is refused as not a SPIFFE ID', async (uri) => {
    const s = await ca.mintSvid(ID, { uriSans: [uri] });
    expect(verifyX509Svid(s.chain, bundles, { nowMs: NOW })).toMatchObject({ ok: false, code: 'TESSERA_ERR_SVID_NOT_SPIFFE_ID' });
  });

  test('hostile URI SAN strings are read from DER as one value, never split', async () => {
    for (const uri of [`${ID}, URI:spiffe://example.org/admin`, `${ID};URI=spiffe://example.org/admin`, `${ID}"`, `${ID}\n`]) {
      const s = await ca.mintSvid(ID, { uriSans: [uri] });
      expect(readCertFields(s.leaf.raw).uriSans).toEqual([uri]);
      expect(verifyX509Svid(s.chain, bundles, { nowMs: NOW })).toMatchObject({ ok: false, code: 'TESSERA_ERR_SVID_NOT_SPIFFE_ID' });
    }
  });

  const td = TrustDomain.parse('example.org');
  test.each([
    ['spiffe://example.org', 'bare trust domain'],
    ['spiffe://other.org/ns/a/sa/b', 'another trust domain'],
    ['spiffe://example.org/tessera/control-plane', "the control plane's own ID"],
  ])('checkIssuableId refuses %s (%s)', (id) => {
    expect(() => checkIssuableId(SpiffeId.parse(id), td)).toThrowError(expect.objectContaining({ code: 'TESSERA_ERR_ISSUANCE_RESERVED_ID' }));
  });

  test('checkIssuableId accepts a workload ID of its trust domain', () => {
    expect(() => checkIssuableId(SpiffeId.parse(ID), td)).not.toThrow();
  });

  // One rule: what issuance refuses as reserved in its own trust domain is what a JWT-SVID's subject may not be
  // (reservedIdReason, jwt-svid.ts), whichever trust domain it names.
  test.each(['spiffe://example.org', 'spiffe://example.org/tessera/control-plane', 'spiffe://example.org/tessera/control-plane/x', 'spiffe://example.org/tessera', ID])('reservedIdReason and checkIssuableId agree on %s', (id) => {
    const parsed = SpiffeId.parse(id);
    let refused = false;
    try {
      checkIssuableId(parsed, td);
    } catch {
      refused = true;
    }
    expect(reservedIdReason(parsed) !== undefined).toBe(refused);
  });
});

// The RFC 5280 / X509-SVID path rules OpenSSL enforced only on the outbound side (an outside audit): a peer
// certificate is refused for a pathLenConstraint the path breaks, an extendedKeyUsage without the purposes an SVID
// is used for, a SHA-1 or MD5 signature, or a weak key, wherever the chain is verified. Certificates are forged
// (test/helpers/cert-forge.ts): every one verifies under its issuer's key, only the rule under test is broken.
describe('path rules: pathLen, extendedKeyUsage, signature algorithm, key strength', () => {
  const at = { notBefore: new Date(NOW - 3_600_000), notAfter: new Date(NOW + 3_600_000) };
  let root: Forged;
  let inter: Forged;
  let pathRoots: TrustBundleSet;

  const forgedBundle = (...anchors: Forged[]) => new TrustBundleSet([new TrustBundle(TrustDomain.parse('example.org'), anchors.map((a) => a.cert))]);
  const rootOf = (o: Partial<ForgeTemplate> = {}) => forgeCertificate({ cn: 'Forged Root', key: forgeKey('ec-p256'), ca: true, uriSans: ['spiffe://example.org'], ...at, ...o });
  const caUnder = (issuer: Forged, cn: string, o: Partial<ForgeTemplate> = {}) => forgeCertificate({ cn, key: forgeKey('ec-p256'), issuer, ca: true, ...at, ...o });
  const leafUnder = (issuer: Forged, o: Partial<ForgeTemplate> = {}) =>
    forgeCertificate({ cn: 'leaf', key: forgeKey('ec-p256'), issuer, uriSans: [ID], extKeyUsage: [EKU.serverAuth, EKU.clientAuth], ...at, ...o });
  const verify = (chain: Forged[], b = pathRoots) => verifyX509Svid(chain.map((c) => c.cert), b, { nowMs: NOW });

  beforeAll(() => {
    root = rootOf();
    inter = caUnder(root, 'Forged Intermediate', { pathLen: 0 });
    pathRoots = forgedBundle(root);
  });

  test('a forged chain that breaks no rule verifies (the base every case below changes one thing of)', () => {
    expect(verify([leafUnder(inter), inter])).toMatchObject({ ok: true });
  });

  describe('basicConstraints pathLenConstraint (RFC 5280 §4.2.1.9)', () => {
    test('an intermediate with pathLen 0 cannot have a CA below it (root → int pathlen:0 → int → leaf)', () => {
      const sub = caUnder(inter, 'Sub Intermediate');
      const r = verify([leafUnder(sub), sub, inter]);
      expect(r).toMatchObject({ ok: false, reason: 'bad_svid', code: 'TESSERA_ERR_SVID_PATH_LENGTH' });
      if (!r.ok) expect(r.message).toContain('Forged Intermediate');
    });

    test('pathLen 1 allows one CA below it, and a second one is refused', () => {
      const top = caUnder(root, 'Top', { pathLen: 1 });
      const mid = caUnder(top, 'Mid');
      const low = caUnder(mid, 'Low');
      expect(verify([leafUnder(mid), mid, top])).toMatchObject({ ok: true });
      expect(verify([leafUnder(low), low, mid, top])).toMatchObject({ ok: false, code: 'TESSERA_ERR_SVID_PATH_LENGTH' });
    });

    test("the trust anchor's own pathLen counts too (as OpenSSL and Go read it)", () => {
      const strictRoot = rootOf({ cn: 'Strict Root', pathLen: 0 });
      const under = caUnder(strictRoot, 'Under Strict');
      expect(verify([leafUnder(strictRoot)], forgedBundle(strictRoot))).toMatchObject({ ok: true });
      expect(verify([leafUnder(under), under], forgedBundle(strictRoot))).toMatchObject({ ok: false, code: 'TESSERA_ERR_SVID_PATH_LENGTH' });
    });

    test('a self-issued intermediate (a key rollover: same name as its issuer) is not counted', () => {
      const rollover = caUnder(inter, 'Forged Intermediate');
      expect(readCertFields(rollover.cert.raw).selfIssued).toBe(true);
      expect(verify([leafUnder(rollover), rollover, inter])).toMatchObject({ ok: true });
    });

    test('the reader takes pathLen from DER, and refuses a negative one as malformed', () => {
      expect(readCertFields(inter.cert.raw).pathLen).toBe(0);
      expect(readCertFields(root.cert.raw).pathLen).toBeNull();
      // basicConstraints = SEQUENCE { TRUE, INTEGER -1 } inside the intermediate: the same length, one byte changed.
      const der = Buffer.from(inter.cert.raw);
      const at0 = der.indexOf(Buffer.from([0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x00]));
      der[at0 + 7] = 0xff;
      expect(() => readCertFields(der)).toThrow(DerError);
    });
  });

  // OpenSSL refused such paths outbound while the inbound verifier took them (an outside audit): one answer now.
  describe('nameConstraints (RFC 5280 §4.2.1.10): URI hosts (the trust domain) and DNS names', () => {
    test('a CA whose constraints permit or do not exclude the trust domain: the path verifies', () => {
      for (const nc of [{ permitted: [{ uri: 'example.org' }] }, { permitted: [{ uri: 'example.org' }, { dns: 'svc.internal' }] }, { excluded: [{ uri: 'other.org' }] }, { excluded: [{ uri: '.example.org' }] }, { permitted: [{ dns: 'svc.internal' }] }]) {
        const ca = caUnder(root, 'Constrained', { pathLen: 0, nameConstraints: nc });
        expect(verify([leafUnder(ca), ca]), JSON.stringify(nc)).toMatchObject({ ok: true });
      }
    });

    test('an intermediate or a trust anchor whose constraints exclude the trust domain or do not permit it: refused', () => {
      for (const nc of [{ permitted: [{ uri: 'other.org' }] }, { excluded: [{ uri: 'example.org' }] }, { permitted: [{ uri: '.example.org' }] }, { excluded: [{ uri: 'EXAMPLE.ORG' }] }]) {
        const ca = caUnder(root, 'Constrained', { pathLen: 0, nameConstraints: nc });
        const r = verify([leafUnder(ca), ca]);
        expect(r, JSON.stringify(nc)).toMatchObject({ ok: false, reason: 'bad_svid', code: 'TESSERA_ERR_SVID_NAME_CONSTRAINTS' });
        if (!r.ok) expect(r.message).toContain('Constrained');
      }
      const anchor = rootOf({ cn: 'Constrained Root', nameConstraints: { permitted: [{ uri: 'other.org' }] } });
      const under = caUnder(anchor, 'Under Constrained', { pathLen: 0 });
      expect(verify([leafUnder(under), under], forgedBundle(anchor))).toMatchObject({ ok: false, code: 'TESSERA_ERR_SVID_NAME_CONSTRAINTS' });
    });

    // An outside audit: [0]/[1] written with primitive tags (0x80/0x81), which OpenSSL reads and enforces, were skipped;
    // a minimum or maximum (OpenSSL: error 49) was ignored. Both refuse now.
    test('odd encodings: other tags for the subtree lists refuse the certificate; a minimum or maximum refuses the path', () => {
      const uriBase = (host: string) => Buffer.concat([Buffer.from([0x86, host.length]), Buffer.from(host, 'ascii')]);
      const seq = (...parts: Buffer[]) => { const body = Buffer.concat(parts); return Buffer.concat([Buffer.from([0x30, body.length]), body]); };
      const tagged = (tag: number, ...parts: Buffer[]) => { const body = Buffer.concat(parts); return Buffer.concat([Buffer.from([tag, body.length]), body]); };
      const primitiveExcluded = seq(tagged(0x81, seq(uriBase('example.org'))));
      const ca = caUnder(root, 'Odd Tags', { pathLen: 0, rawNameConstraints: primitiveExcluded });
      expect(verify([leafUnder(ca), ca]).ok).toBe(false);
      const withMinimum = seq(tagged(0xa0, seq(uriBase('example.org'), tagged(0x80, Buffer.from([1])))));
      const ca2 = caUnder(root, 'With Minimum', { pathLen: 0, rawNameConstraints: withMinimum });
      const r = verify([leafUnder(ca2), ca2]);
      expect(r).toMatchObject({ ok: false, code: 'TESSERA_ERR_SVID_NAME_CONSTRAINTS' });
      if (!r.ok) expect(r.message).toContain('minimum or maximum');
      // The same permitted subtree without the minimum verifies.
      const plain = caUnder(root, 'Plain', { pathLen: 0, rawNameConstraints: seq(tagged(0xa0, seq(uriBase('example.org')))) });
      expect(verify([leafUnder(plain), plain]).ok).toBe(true);
    });

    test('a constraint of a kind not evaluated (an IP address) refuses the path: fail closed', () => {
      const ca = caUnder(root, 'IP Constrained', { pathLen: 0, nameConstraints: { permitted: [{ ip: Uint8Array.of(10, 0, 0, 0, 255, 0, 0, 0) }] } });
      expect(verify([leafUnder(ca), ca])).toMatchObject({ ok: false, code: 'TESSERA_ERR_SVID_NAME_CONSTRAINTS' });
    });
  });

  describe('extendedKeyUsage (X509-SVID §4.4: when included, serverAuth and clientAuth MUST be set)', () => {
    test.each([
      ['codeSigning only, critical', [EKU.codeSigning], true],
      ['serverAuth only', [EKU.serverAuth], false],
      ['clientAuth only', [EKU.clientAuth], false],
      ['anyExtendedKeyUsage only', [EKU.any], false],
    ] as const)('a leaf whose extendedKeyUsage is %s is refused', (_name, eku, critical) => {
      const r = verify([leafUnder(inter, { extKeyUsage: eku, extKeyUsageCritical: critical }), inter]);
      expect(r).toMatchObject({ ok: false, reason: 'bad_svid', code: 'TESSERA_ERR_SVID_BAD_EKU' });
    });

    test('a leaf without the extension, or with both purposes and more, verifies', () => {
      expect(verify([leafUnder(inter, { extKeyUsage: undefined }), inter]).ok).toBe(true);
      expect(verify([leafUnder(inter, { extKeyUsage: [EKU.codeSigning, EKU.clientAuth, EKU.serverAuth] }), inter]).ok).toBe(true);
    });

    test('a purpose OID with an unfinished last arc is malformed, not read as the purpose it starts like', () => {
      const der = Buffer.from(leafUnder(inter, { extKeyUsage: [EKU.clientAuth, EKU.serverAuth] }).cert.raw);
      // serverAuth is 06 08 2b 06 01 05 05 07 03 01: its last byte given the continuation bit, same length.
      const at0 = der.indexOf(Buffer.from('06082b06010505070301', 'hex'));
      der[at0 + 9] = 0x81;
      expect(() => readCertFields(der)).toThrow(DerError);
      expect(verifyX509Svid([der, inter.cert.raw], pathRoots, { nowMs: NOW })).toMatchObject({ ok: false, code: 'TESSERA_ERR_SVID_MALFORMED' });
    });

    test('a CA whose extendedKeyUsage leaves out a purpose restricts its leaves (intermediate and anchor alike)', () => {
      const clientOnly = caUnder(root, 'Client-only CA', { extKeyUsage: [EKU.clientAuth] });
      expect(verify([leafUnder(clientOnly), clientOnly])).toMatchObject({ ok: false, code: 'TESSERA_ERR_SVID_BAD_EKU' });
      const anyOnly = caUnder(root, 'Any-EKU CA', { extKeyUsage: [EKU.any] });
      expect(verify([leafUnder(anyOnly), anyOnly])).toMatchObject({ ok: false, code: 'TESSERA_ERR_SVID_BAD_EKU' });
      const both = caUnder(root, 'TLS CA', { extKeyUsage: [EKU.serverAuth, EKU.clientAuth] });
      expect(verify([leafUnder(both), both]).ok).toBe(true);
      const codeRoot = rootOf({ cn: 'Code Root', extKeyUsage: [EKU.codeSigning] });
      expect(verify([leafUnder(codeRoot)], forgedBundle(codeRoot))).toMatchObject({ ok: false, code: 'TESSERA_ERR_SVID_BAD_EKU' });
    });
  });

  describe('signature algorithm: SHA-256 or stronger, ECDSA or RSA (PKCS#1 v1.5, PSS)', () => {
    let rsaInter: Forged;
    beforeAll(() => {
      rsaInter = caUnder(root, 'RSA Intermediate', { key: forgeKey('rsa-2048') });
    });

    test.each([
      ['ecdsa-with-SHA1', () => [leafUnder(inter, { signature: 'ecdsa-sha1' }), inter]],
      ['sha1WithRSAEncryption', () => [leafUnder(rsaInter, { signature: 'rsa-sha1' }), rsaInter]],
      ['md5WithRSAEncryption', () => [leafUnder(rsaInter, { signature: 'rsa-md5' }), rsaInter]],
      ['RSASSA-PSS with SHA-1', () => [leafUnder(rsaInter, { signature: 'rsa-pss-sha1' }), rsaInter]],
    ] as const)('a leaf signed with %s is refused', (name, chain) => {
      const r = verify(chain());
      expect(r).toMatchObject({ ok: false, reason: 'bad_svid', code: 'TESSERA_ERR_SVID_WEAK_SIGNATURE' });
      if (!r.ok) expect(r.message).toContain(name.startsWith('RSASSA') ? 'SHA-1' : name);
    });

    test('an intermediate signed with SHA-1 is refused; a SHA-1 self-signature on the anchor is not judged', () => {
      const sha1Inter = caUnder(root, 'SHA-1 Intermediate', { signature: 'ecdsa-sha1' });
      expect(verify([leafUnder(sha1Inter), sha1Inter])).toMatchObject({ ok: false, code: 'TESSERA_ERR_SVID_WEAK_SIGNATURE' });
      const sha1Root = rootOf({ cn: 'SHA-1 Root', signature: 'ecdsa-sha1' });
      expect(verify([leafUnder(sha1Root)], forgedBundle(sha1Root)).ok).toBe(true);
    });

    test('ECDSA with SHA-384, RSA PKCS#1 with SHA-256 and RSASSA-PSS with SHA-256 verify', () => {
      expect(verify([leafUnder(inter, { signature: 'ecdsa-sha384' }), inter]).ok).toBe(true);
      expect(verify([leafUnder(rsaInter, { signature: 'rsa-sha256' }), rsaInter]).ok).toBe(true);
      const pss = leafUnder(rsaInter, { signature: 'rsa-pss-sha256' });
      expect(readCertFields(pss.cert.raw).signature).toEqual({ oid: '1.2.840.113549.1.1.10', pssHash: '2.16.840.1.101.3.4.2.1' });
      expect(verify([pss, rsaInter]).ok).toBe(true);
    });
  });

  describe('key strength: RSA of 2048 bits or more, EC P-256 or P-384', () => {
    test.each([
      ['rsa-512', 'RSA key of 512 bits'],
      ['rsa-1024', 'RSA key of 1024 bits'],
      ['ec-p521', 'P-521'],
      ['ec-secp256k1', '1.3.132.0.10'],
      ['ed25519', 'Ed25519'],
    ] as const)('a %s leaf is refused', (kind, named) => {
      const r = verify([leafUnder(inter, { key: forgeKey(kind) }), inter]);
      expect(r).toMatchObject({ ok: false, reason: 'bad_svid', code: 'TESSERA_ERR_SVID_WEAK_KEY' });
      if (!r.ok) expect(r.message).toContain(named);
    });

    test('P-384 and RSA-2048 leaves verify', () => {
      expect(verify([leafUnder(inter, { key: forgeKey('ec-p384') }), inter]).ok).toBe(true);
      expect(verify([leafUnder(inter, { key: forgeKey('rsa-2048') }), inter]).ok).toBe(true);
      expect(readCertFields(leafUnder(inter, { key: forgeKey('rsa-2048') }).cert.raw).key).toEqual({ type: 'rsa', bits: 2048, exponentBits: 17 });
    });

    test('an RSA-1024 intermediate is refused, and so is an RSA-1024 trust anchor; a P-521 anchor is accepted (a bundle may hold one)', () => {
      const weakInter = caUnder(root, 'Weak Intermediate', { key: forgeKey('rsa-1024') });
      const r = verify([leafUnder(weakInter), weakInter]);
      expect(r).toMatchObject({ ok: false, code: 'TESSERA_ERR_SVID_WEAK_KEY' });
      if (!r.ok) expect(r.message).toContain('intermediate');
      const weakRoot = rootOf({ cn: 'Weak Root', key: forgeKey('rsa-1024') });
      expect(verify([leafUnder(weakRoot)], forgedBundle(weakRoot))).toMatchObject({ ok: false, code: 'TESSERA_ERR_SVID_WEAK_KEY' });
      const p521Root = rootOf({ cn: 'P-521 Root', key: forgeKey('ec-p521') });
      expect(verify([leafUnder(p521Root)], forgedBundle(p521Root)).ok).toBe(true);
    });
  });

  test('the rules hold for every caller: leafSpiffeId (identity files, svid verify) refuses the leaf alone too', () => {
    expect(leafSpiffeId(leafUnder(inter, { key: forgeKey('rsa-1024') }).cert)).toMatchObject({ ok: false, code: 'TESSERA_ERR_SVID_WEAK_KEY' });
    expect(leafSpiffeId(leafUnder(inter, { extKeyUsage: [EKU.codeSigning] }).cert)).toMatchObject({ ok: false, code: 'TESSERA_ERR_SVID_BAD_EKU' });
  });
});
