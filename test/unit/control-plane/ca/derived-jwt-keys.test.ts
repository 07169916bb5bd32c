// JWT-SVID keys derived from a read-only CA (audit 61c F1: replicas on one Secret each made their own key, so a token
// validated at about half the sidecars). Two replicas loading the same authorities derive the same keys, and a token
// one signs validates with the other's published keys; the derived key is a valid P-256 key bound to the CA key and
// the trust domain; every authority's key is published and the active authority's newest signs, for managed roots
// (the root's key) and offline ones (each intermediate's key). Derived once: a read-only CA changes only with a restart.
import { createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { signJwtSvid, validateJwtSvid } from '../../../../common/spiffe/jwt-svid.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { type AuthorityState, createIntermediate, createRoot, type LoadedAuthority } from '../../../../control-plane/src/ca/authority.js';
import { DerivedJwtKeys, deriveJwtKey } from '../../../../control-plane/src/ca/derived-jwt-keys.js';
import type { JwtKeySet } from '../../../../control-plane/src/ca/jwt-keys.js';

const TD = TrustDomain.parse('example.org');
const NOW = Date.UTC(2026, 11, 1);
const DAY = 86_400_000;

async function authority(id: string, state: AuthorityState, offline = false): Promise<LoadedAuthority> {
  const root = await createRoot(TD, id, NOW, 365 * DAY);
  const intermediates = [await createIntermediate(TD, id, root, NOW, 30 * DAY), await createIntermediate(TD, id, root, NOW, 30 * DAY)];
  return {
    record: { id, state, createdAtMs: NOW, rootCertFile: `${id}-root.crt`, rootNotAfterMs: NOW + 365 * DAY, intermediates: [] },
    root: { cert: root.cert, key: offline ? null : root.key },
    intermediates,
  };
}

function tokenOf(keys: JwtKeySet): string {
  const k = keys.active();
  return signJwtSvid({ privateKey: k.privateKey, keyId: k.keyId, spiffeId: 'spiffe://example.org/w', audience: ['a'], issuedAtMs: NOW, expiresAtMs: NOW + 300_000 });
}
const bundlesOf = (keys: JwtKeySet) => new Map([['example.org', new Map(keys.published().map((k) => [k.keyId, k.publicKey]))]]);

describe('deriveJwtKey', () => {
  test('the same CA key and trust domain give the same P-256 key, which signs and verifies; another CA key or trust domain another', () => {
    const ca = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const a = deriveJwtKey(ca, 'example.org');
    const b = deriveJwtKey(ca, 'example.org');
    expect(a.export({ format: 'jwk' })).toEqual(b.export({ format: 'jwk' }));
    expect(a.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const sig = sign('sha256', Buffer.from('x'), a);
    expect(verify('sha256', Buffer.from('x'), createPublicKey(b), sig)).toBe(true);
    expect(deriveJwtKey(ca, 'other.org').export({ format: 'jwk' }).d).not.toBe(a.export({ format: 'jwk' }).d);
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    expect(deriveJwtKey(other, 'example.org').export({ format: 'jwk' }).d).not.toBe(a.export({ format: 'jwk' }).d);
    // Never the CA key itself.
    expect(a.export({ format: 'jwk' }).d).not.toBe(ca.export({ format: 'jwk' }).d);
  });

  test('an RSA CA key derives a P-256 key too', () => {
    const ca = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    expect(deriveJwtKey(ca, 'example.org').asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
  });
});

describe('DerivedJwtKeys', () => {
  test('two replicas on the same authorities publish the same keys; a token one signs validates with the other\'s', async () => {
    const authorities = [await authority('aaaa', 'active')];
    const a = new DerivedJwtKeys(TD.name, authorities);
    const b = new DerivedJwtKeys(TD.name, authorities);
    expect(a.published().map((k) => k.keyId)).toEqual(b.published().map((k) => k.keyId));
    expect(validateJwtSvid(tokenOf(a), 'a', bundlesOf(b), NOW).spiffeId.toString()).toBe('spiffe://example.org/w');
    expect(validateJwtSvid(tokenOf(b), 'a', bundlesOf(a), NOW).spiffeId.toString()).toBe('spiffe://example.org/w');
  });

  test('prepared, active and retired authorities: each one\'s key is published, the active one\'s signs', async () => {
    const [prepared, active, retired] = [await authority('p', 'prepared'), await authority('a', 'active'), await authority('r', 'retired')];
    const keys = new DerivedJwtKeys(TD.name, [retired, active, prepared]);
    const onlyActive = new DerivedJwtKeys(TD.name, [active]);
    expect(keys.published()).toHaveLength(3);
    expect(keys.active().keyId).toBe(onlyActive.active().keyId);
    expect(keys.sources().map((s) => s.authority)).toEqual(['r', 'a', 'p']);
    // After activation of the prepared one (a replica restarted on the new Secret), a replica still on the old one validates its tokens.
    const next = new DerivedJwtKeys(TD.name, [{ ...active, record: { ...active.record, state: 'retired' } }, { ...prepared, record: { ...prepared.record, state: 'active' } }]);
    expect(next.active().keyId).not.toBe(keys.active().keyId);
    expect(validateJwtSvid(tokenOf(next), 'a', bundlesOf(keys), NOW).spiffeId.toString()).toBe('spiffe://example.org/w');
  });

  test('an offline root: one key per intermediate key, the newest signs', async () => {
    const offline = await authority('off', 'active', true);
    const keys = new DerivedJwtKeys(TD.name, [offline]);
    expect(keys.published()).toHaveLength(2);
    const newest = new DerivedJwtKeys(TD.name, [{ ...offline, intermediates: [offline.intermediates[1]!] }]);
    expect(keys.active().keyId).toBe(newest.active().keyId);
    expect(keys.published()[0]!.keyId).not.toBe(keys.active().keyId);
  });

  test('the same authorities give the same keys, one more authority one more key; no active authority is refused with a code', async () => {
    const active = await authority('a', 'active');
    const keys = new DerivedJwtKeys(TD.name, [active]);
    expect(new DerivedJwtKeys(TD.name, [active]).published().map((k) => k.keyId)).toEqual(keys.published().map((k) => k.keyId));
    const more = new DerivedJwtKeys(TD.name, [active, await authority('p', 'prepared')]);
    expect(more.published()).toHaveLength(2);
    expect(more.active().keyId).toBe(keys.active().keyId);
    expect(() => new DerivedJwtKeys(TD.name, [])).toThrow(/TESSERA_ERR_CP_START_FAILED|no active authority/);
  });
});
