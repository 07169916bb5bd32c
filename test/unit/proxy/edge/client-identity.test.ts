// verifyEdgeClient and the XFCC it yields: outside-client identities confined to their CA's trust domain, mesh
// identities only for chains that verify to the mesh bundle by the SVID rules, and XFCC values that cannot
// carry a separator out of their field.
import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, test, vi } from 'vitest';
import { SpiffeId } from '../../../../common/spiffe/spiffe-id.js';
import { TrustBundle, TrustBundleSet } from '../../../../common/spiffe/trust-bundle.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { type EdgeClientTrust, verifyEdgeClient, xfccFor } from '../../../../proxy/src/edge/client-identity.js';
import { xfccValue } from '../../../../proxy/src/tls/xfcc.js';
import { EKU, type ForgeTemplate, type Forged, forgeCertificate, forgeKey } from '../../../helpers/cert-forge.js';
import { TestCa } from '../../../helpers/test-ca.js';

const MESH_TD = TrustDomain.parse('example.org');
const MESH_A = 'spiffe://example.org/ns/default/sa/a';
let mesh: TestCa;
let partner: TestCa;
let meshBundles: TrustBundleSet;

beforeAll(async () => {
  mesh = await TestCa.create({ trustDomain: 'example.org' });
  partner = await TestCa.create({ trustDomain: 'partner.example', rootName: 'CN=Partner CA' });
  meshBundles = new TrustBundleSet([TrustBundle.parse('example.org', mesh.bundlePem())]);
});

const trust = (over: Partial<EdgeClientTrust> = {}): EdgeClientTrust => ({
  authorities: [partner.root.cert],
  clientTrustDomain: TrustDomain.parse('partner.example'),
  mesh: meshBundles,
  ownTrustDomain: MESH_TD,
  ...over,
});

describe('verifyEdgeClient', () => {
  test('a partner ID in the configured client trust domain is the client identity', async () => {
    const c = await partner.mintSvid('spiffe://partner.example/billing');
    const r = verifyEdgeClient(c.chain, trust(), Date.now());
    expect(r.ok && r.client.spiffeId?.toString()).toBe('spiffe://partner.example/billing');
  });

  test('the client is valid (and cached by the gate) only while its whole path is: an intermediate that expires first ends it', async () => {
    const c = await partner.mintSvid('spiffe://partner.example/billing', { notAfter: new Date(Date.now() + 20 * 3_600_000) });
    const r = verifyEdgeClient(c.chain, trust(), Date.now());
    expect(r.ok && r.client.notAfterMs).toBe(partner.intermediate.cert.validToDate.getTime());
  });

  test('a partner certificate with an empty subject is identified (Node reads its subject as undefined), not a crash', async () => {
    const c = await partner.mintSvid('spiffe://partner.example/empty-subject', { subject: '' });
    const r = verifyEdgeClient(c.chain, trust(), Date.now());
    expect(r.ok && r.client.subject).toBe('');
    expect(r.ok && r.client.spiffeId?.toString()).toBe('spiffe://partner.example/empty-subject');
  });

  test('a partner asserting a mesh ID is refused, even when its clientTrustDomain is (mis)configured as the mesh one', async () => {
    const c = await partner.mintSvid(MESH_A);
    expect(verifyEdgeClient(c.chain, trust(), Date.now())).toMatchObject({ ok: false, reason: 'wrong_trust_domain', code: 'TESSERA_ERR_EDGE_CLIENT_FOREIGN_ID' });
    expect(verifyEdgeClient(c.chain, trust({ clientTrustDomain: MESH_TD }), Date.now())).toMatchObject({ ok: false, code: 'TESSERA_ERR_EDGE_CLIENT_FOREIGN_ID' });
    expect(verifyEdgeClient(c.chain, trust({ clientTrustDomain: null }), Date.now())).toMatchObject({ ok: false, code: 'TESSERA_ERR_EDGE_CLIENT_FOREIGN_ID' });
  });

  test('a mesh SVID chaining to a mesh authority listed in clientCa is a mesh workload, checked by the SVID rules', async () => {
    const c = await mesh.mintSvid(MESH_A);
    const withMesh = trust({ authorities: [partner.root.cert, mesh.root.cert] });
    const r = verifyEdgeClient(c.chain, withMesh, Date.now());
    expect(r.ok && r.client.spiffeId?.equals(SpiffeId.parse(MESH_A))).toBe(true);
    const bare = await mesh.mintSvid('spiffe://example.org');
    expect(verifyEdgeClient(bare.chain, withMesh, Date.now())).toMatchObject({ ok: false, code: 'TESSERA_ERR_SVID_NOT_WORKLOAD_ID' });
    // Not listed in clientCa: not an edge client at all.
    expect(verifyEdgeClient(c.chain, trust(), Date.now())).toMatchObject({ ok: false, reason: 'unknown_ca' });
  });

  test('an expired partner certificate and an upper-case scheme are refused', async () => {
    const old = await partner.mintSvid('spiffe://partner.example/x', { notBefore: new Date(Date.now() - 7_200_000), notAfter: new Date(Date.now() - 1000) });
    expect(verifyEdgeClient(old.chain, trust(), Date.now())).toMatchObject({ ok: false, reason: 'expired' });
    const upper = await partner.mintSvid('spiffe://partner.example/x', { uriSans: ['SPIFFE://partner.example/x'] });
    expect(verifyEdgeClient(upper.chain, trust(), Date.now())).toMatchObject({ ok: false, code: 'TESSERA_ERR_SVID_NOT_SPIFFE_ID' });
  });
});

// The path rules of the SVID verifier hold for partner chains too (pathLen, key, signature), with the
// extendedKeyUsage of a TLS client: clientAuth, not serverAuth as well.
describe('verifyEdgeClient: path rules for partner chains', () => {
  const at = { notBefore: new Date(Date.now() - 3_600_000), notAfter: new Date(Date.now() + 3_600_000) };
  let root: Forged;
  let issuing: Forged;
  const partnerTrust = () => trust({ authorities: [root.cert] });
  const leaf = (issuer: Forged, o: Partial<ForgeTemplate> = {}) => forgeCertificate({ cn: 'client', key: forgeKey('ec-p256'), issuer, uriSans: ['spiffe://partner.example/billing'], ...at, ...o });
  const edge = (...chain: Forged[]) => verifyEdgeClient(chain.map((c) => c.cert), partnerTrust(), Date.now());

  beforeAll(() => {
    root = forgeCertificate({ cn: 'Partner Root', key: forgeKey('ec-p256'), ca: true, ...at });
    issuing = forgeCertificate({ cn: 'Partner Issuing', key: forgeKey('ec-p256'), issuer: root, ca: true, pathLen: 0, ...at });
  });

  test('a clientAuth-only leaf is a client certificate; serverAuth-only or codeSigning-only is not', () => {
    expect(edge(leaf(issuing, { extKeyUsage: [EKU.clientAuth] }), issuing)).toMatchObject({ ok: true });
    expect(edge(leaf(issuing, { extKeyUsage: [EKU.serverAuth] }), issuing)).toMatchObject({ ok: false, reason: 'bad_svid', code: 'TESSERA_ERR_SVID_BAD_EKU' });
    expect(edge(leaf(issuing, { extKeyUsage: [EKU.codeSigning] }), issuing)).toMatchObject({ ok: false, code: 'TESSERA_ERR_SVID_BAD_EKU' });
    const clientCa = forgeCertificate({ cn: 'Client CA', key: forgeKey('ec-p256'), issuer: root, ca: true, extKeyUsage: [EKU.clientAuth], ...at });
    expect(edge(leaf(clientCa), clientCa)).toMatchObject({ ok: true });
  });

  test('a pathLen the chain breaks, a SHA-1 signature and an RSA-1024 key are refused', () => {
    const sub = forgeCertificate({ cn: 'Partner Sub', key: forgeKey('ec-p256'), issuer: issuing, ca: true, ...at });
    expect(edge(leaf(sub), sub, issuing)).toMatchObject({ ok: false, reason: 'bad_svid', code: 'TESSERA_ERR_SVID_PATH_LENGTH' });
    expect(edge(leaf(issuing, { signature: 'ecdsa-sha1' }), issuing)).toMatchObject({ ok: false, reason: 'bad_svid', code: 'TESSERA_ERR_SVID_WEAK_SIGNATURE' });
    expect(edge(leaf(issuing, { key: forgeKey('rsa-1024') }), issuing)).toMatchObject({ ok: false, reason: 'bad_svid', code: 'TESSERA_ERR_SVID_WEAK_KEY' });
  });

  // Audit 56a F2: a sent intermediate's key checked the leaf's signature before the path was known to reach clientCa.
  test('an RSA key with a 3,070-bit exponent on the chain is refused as WEAK_KEY with no signature checked, the leaf\'s or an issuer\'s', () => {
    const huge = forgeKey('rsa-3072-e3070');
    const hugeIssuing = forgeCertificate({ cn: 'Huge Issuing', key: huge, issuer: root, ca: true, ...at });
    const lookAlike = forgeCertificate({ cn: 'Partner Issuing', key: huge, ca: true, ...at });
    const verify = vi.spyOn(X509Certificate.prototype, 'verify');
    try {
      expect(edge(leaf(hugeIssuing), hugeIssuing)).toMatchObject({ ok: false, reason: 'bad_svid', code: 'TESSERA_ERR_SVID_WEAK_KEY', message: expect.stringContaining('public exponent of 3070 bits') });
      expect(edge(leaf(issuing, { key: huge }), issuing)).toMatchObject({ ok: false, reason: 'bad_svid', code: 'TESSERA_ERR_SVID_WEAK_KEY' });
      expect(edge(leaf(lookAlike), lookAlike)).toMatchObject({ ok: false, reason: 'unknown_ca', code: 'TESSERA_ERR_SVID_UNKNOWN_CA' });
      expect(verify).not.toHaveBeenCalled();
    } finally {
      verify.mockRestore();
    }
  });
});

describe('XFCC values', () => {
  test.each([
    ['a.example', 'a.example'],
    ['a;URI=x', '"a;URI=x"'],
    ['a,By=x', '"a,By=x"'],
    ['a"b\\c', '"a\\"b\\\\c"'],
    ['a\r\nb', '"a??b"'],
  ])('%j is written as %s', (v, want) => {
    expect(xfccValue(v)).toBe(want);
  });

  test('a subject with quotes and separators stays one quoted field', () => {
    const x = xfccFor(MESH_A, { spiffeId: null, subject: 'CN=a";URI=spiffe://example.org/x', hash: 'ab', dns: [], notAfterMs: 0, serial: '01' });
    expect(x).toBe(`By=${MESH_A};Hash=ab;Subject="CN=a\\";URI=spiffe://example.org/x"`);
  });
});
