// buildPath, through verifyX509Svid: no signature is checked with a key a caller chose (audit 56a F2: every sent
// intermediate's key checked the leaf's signature first, ~9 ms for an RSA key with a 3,070-bit exponent, anonymous
// and unbounded). A path is built by name to a trust anchor first and its signatures checked from the anchor down,
// after every key on it passed the exponent bound (2^31-1). Real certificates, really signed (test/helpers/cert-forge.ts);
// X509Certificate.prototype.verify is watched to see which keys were used, not timed.
import { X509Certificate } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { TrustBundle, TrustBundleSet } from '../../../../common/spiffe/trust-bundle.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { buildPath } from '../../../../common/spiffe/x509-path.js';
import { verifyX509Svid } from '../../../../common/spiffe/x509-svid.js';
import { EKU, type ForgeKeyPair, type ForgeTemplate, type Forged, forgeCertificate, forgeKey } from '../../../helpers/cert-forge.js';

const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const ID = 'spiffe://example.org/ns/default/sa/web';
const at = { notBefore: new Date(NOW - 3_600_000), notAfter: new Date(NOW + 3_600_000) };

let root: Forged;
let bundle: TrustBundleSet;
/** An RSA-3072 key whose public exponent has 3,070 bits: real, it signs and verifies. */
let huge: ForgeKeyPair;

const caUnder = (issuer: Forged | undefined, cn: string, o: Partial<ForgeTemplate> = {}) => forgeCertificate({ cn, key: forgeKey('ec-p256'), ...(issuer ? { issuer } : {}), ca: true, ...at, ...o });
const leafUnder = (issuer: Forged) => forgeCertificate({ cn: 'leaf', key: forgeKey('ec-p256'), issuer, uriSans: [ID], extKeyUsage: [EKU.serverAuth, EKU.clientAuth], ...at });
const verify = (chain: Forged[]) => verifyX509Svid(chain.map((c) => c.cert), bundle, { nowMs: NOW });

/** The keys X509Certificate.verify is called with while `f` runs (each as its SPKI DER, hex). */
function keysUsed<T>(f: () => T): { result: T; keys: string[] } {
  const spy = vi.spyOn(X509Certificate.prototype, 'verify');
  try {
    const result = f();
    return { result, keys: spy.mock.calls.map(([k]) => k.export({ format: 'der', type: 'spki' }).toString('hex')) };
  } finally {
    spy.mockRestore();
  }
}
const spkiOf = (f: Forged) => f.cert.publicKey.export({ format: 'der', type: 'spki' }).toString('hex');

beforeAll(() => {
  root = caUnder(undefined, 'Path Root', { uriSans: ['spiffe://example.org'] });
  bundle = new TrustBundleSet([new TrustBundle(TrustDomain.parse('example.org'), [root.cert])]);
  huge = forgeKey('rsa-3072-e3070');
});

afterEach(() => vi.restoreAllMocks());

describe('no signature is checked with a key the caller chose', () => {
  test('a sound chain verifies, checked from the anchor down: the root key first, then the intermediate it proved', () => {
    const inter = caUnder(root, 'Path Intermediate');
    const { result, keys } = keysUsed(() => verify([leafUnder(inter), inter]));
    expect(result.ok).toBe(true);
    expect(keys).toEqual([spkiOf(root), spkiOf(inter)]);
  });

  test('an intermediate with a 3,070-bit RSA exponent is refused as WEAK_KEY before any signature is checked, though the root signed it and it signed the leaf', () => {
    const inter = caUnder(root, 'Huge Exponent Intermediate', { key: huge });
    expect(inter.cert.verify(root.cert.publicKey)).toBe(true);
    const leaf = leafUnder(inter);
    expect(leaf.cert.verify(inter.cert.publicKey)).toBe(true);
    const { result, keys } = keysUsed(() => verify([leaf, inter]));
    expect(result).toMatchObject({ ok: false, reason: 'bad_svid', code: 'TESSERA_ERR_SVID_WEAK_KEY' });
    if (!result.ok) expect(result.message).toContain('intermediate CN=Huge Exponent Intermediate: an RSA key with a public exponent of 3070 bits (at most 2^31-1)');
    expect(keys).toEqual([]);
  });

  test("the audit's chain: look-alike intermediates with such keys that lead to no anchor cost no signature check (UNKNOWN_CA)", () => {
    // Self-issued under one name, each signing the next as the audit sent them: the leaf really verifies under the first.
    const first = caUnder(undefined, 'Evil Int', { key: huge });
    const others = [caUnder(undefined, 'Evil Int', { key: huge }), caUnder(undefined, 'Evil Int', { key: huge })];
    const leaf = leafUnder(first);
    expect(leaf.cert.verify(first.cert.publicKey)).toBe(true);
    const { result, keys } = keysUsed(() => verify([leaf, first, ...others]));
    expect(result).toMatchObject({ ok: false, reason: 'unknown_ca', code: 'TESSERA_ERR_SVID_UNKNOWN_CA' });
    expect(keys).toEqual([]);
  });

  test('a look-alike intermediate under the anchor\'s name is checked by the anchor only: its own key is never used (BAD_SIGNATURE)', () => {
    const impostor = caUnder(undefined, 'Path Root', { uriSans: ['spiffe://example.org'] });
    const lookAlike = caUnder(impostor, 'Path Intermediate');
    const leaf = leafUnder(lookAlike);
    const { result, keys } = keysUsed(() => verify([leaf, lookAlike]));
    expect(result).toMatchObject({ ok: false, reason: 'bad_signature', code: 'TESSERA_ERR_SVID_BAD_SIGNATURE' });
    expect(keys).toEqual([spkiOf(root)]);
  });

  test('a trust anchor with such a key is not used either: WEAK_KEY naming the anchor', () => {
    const hugeRoot = caUnder(undefined, 'Huge Root', { key: huge, uriSans: ['spiffe://example.org'] });
    const inter = caUnder(hugeRoot, 'Under Huge Root');
    const { result, keys } = keysUsed(() => buildPath(leafUnder(inter).cert, [inter.cert], [hugeRoot.cert]));
    expect(result).toEqual({ ok: false, badSignature: false, intermediateNotCa: false, weakKey: 'trust anchor CN=Huge Root: an RSA key with a public exponent of 3070 bits (at most 2^31-1)' });
    expect(keys).toEqual([]);
  });

  test('many certificates of one name: the search by name is bounded, and no signature is checked without an anchor', () => {
    const loop = Array.from({ length: 10 }, () => caUnder(undefined, 'Loop'));
    const leaf = leafUnder(loop[0]!);
    const issued = vi.spyOn(X509Certificate.prototype, 'checkIssued');
    const { result, keys } = keysUsed(() => buildPath(leaf.cert, loop.map((c) => c.cert), [root.cert]));
    expect(result).toMatchObject({ ok: false, badSignature: false, weakKey: null });
    expect(keys).toEqual([]);
    // Each authority and sent certificate once per level of the deepest path (8), plus 256 for branches.
    expect(issued.mock.calls.length).toBeLessThanOrEqual((1 + 10) * 8 + 256);
  });

  test('a bundle of many authorities still anchors a deepest legal chain (leaf + 7 intermediates; audit 56d F1)', () => {
    // A fixed budget of 256 name checks refused this from 31 authorities up: the search looks at each of them per level.
    const others = Array.from({ length: 60 }, (_, i) => caUnder(undefined, `Other Root ${i}`, { uriSans: ['spiffe://example.org'] }).cert);
    const chain: Forged[] = [];
    for (let i = 0; i < 7; i++) chain.push(caUnder(chain[i - 1] ?? root, `Deep ${i}`));
    const leaf = leafUnder(chain[6]!);
    const r = buildPath(leaf.cert, [...chain].reverse().map((c) => c.cert), [...others, root.cert]);
    expect(r.ok && r.path.length).toBe(9);
  });

  test('of two anchors with one name (a CA rotation), the one whose key signed ends the path', () => {
    const oldRoot = caUnder(undefined, 'Path Root', { uriSans: ['spiffe://example.org'] });
    const inter = caUnder(root, 'Rotated Intermediate');
    const r = buildPath(leafUnder(inter).cert, [inter.cert], [oldRoot.cert, root.cert]);
    expect(r.ok && r.path.map((c) => c.subject)).toEqual(['CN=leaf', 'CN=Rotated Intermediate', 'CN=Path Root']);
  });
});
