// JWT-SVID signing keys derived from the CA's own keys, for replicas that share a read-only CA (a Kubernetes Secret)
// and nothing else: each replica kept its own random key in its data dir, so a token signed by one validated only
// where that replica's key was published — about half the sidecars of the base install (audit 61c F1). Every replica
// loading the same Secret derives the same keys from it, with no state of their own: one key per CA key there (an
// authority's root key; for an offline root, each intermediate key the Secret holds), HKDF-SHA256 of the CA key,
// bound to the trust domain. They follow the CA's rotation, as SPIRE's JWT keys do: every authority's key is
// published (prepared, active, retired), the active authority's newest one signs. HKDF is one-way: a published
// JWT key says nothing of the CA key it came from. Derived once: a read-only CA is the one loaded at start until a
// restart (its in-memory intermediates rotate, but an authority with a root key derives from that key).
import { createECDH, createPrivateKey, createPublicKey, hkdfSync, type KeyObject } from 'node:crypto';
import { TesseraError } from '../../../common/errors.js';
import type { JwtAuthority } from '../../../common/spiffe/spiffe-bundle.js';
import type { LoadedAuthority } from './authority.js';
import { jwkThumbprint } from './jwt-key-backend.js';
import type { JwtKeySet, JwtSigningKey } from './jwt-keys.js';

/** Domain separation: a key derived for another purpose from the same CA key never equals this one. */
const SALT = Buffer.from('tessera jwt-svid signing key v1');
/** The order of P-256's base point. */
const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

/**
 * The P-256 key derived from `caKey` for `trustDomain`: 48 bytes of HKDF reduced into [1, n-1], so the bias is
 * below 2⁻¹²⁸ (FIPS 186-5 A.2.1's method).
 */
export function deriveJwtKey(caKey: KeyObject, trustDomain: string): KeyObject {
  const okm = Buffer.from(hkdfSync('sha256', caKey.export({ type: 'pkcs8', format: 'der' }), SALT, `spiffe://${trustDomain}`, 48));
  const scalar = (BigInt(`0x${okm.toString('hex')}`) % (P256_ORDER - 1n)) + 1n;
  const d = Buffer.from(scalar.toString(16).padStart(64, '0'), 'hex');
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(d);
  const point = ecdh.getPublicKey();
  return createPrivateKey({
    key: { kty: 'EC', crv: 'P-256', d: d.toString('base64url'), x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33, 65).toString('base64url') },
    format: 'jwk',
  });
}

/** The CA keys an authority's JWT keys come from: its root's, or (an offline root) its intermediates', oldest first. */
function caKeysOf(a: LoadedAuthority): KeyObject[] {
  return a.root.key ? [a.root.key.privateKey] : a.intermediates.map((i) => i.key.privateKey);
}

interface DerivedKey extends JwtSigningKey {
  readonly authorityId: string;
}

export class DerivedJwtKeys implements JwtKeySet {
  readonly #published: readonly DerivedKey[];
  readonly #active: DerivedKey;

  constructor(trustDomain: string, authorities: readonly LoadedAuthority[]) {
    const published: DerivedKey[] = [];
    let active: DerivedKey | undefined;
    for (const a of authorities) {
      for (const caKey of caKeysOf(a)) {
        const privateKey = deriveJwtKey(caKey, trustDomain);
        const publicKey = createPublicKey(privateKey);
        const k = { keyId: jwkThumbprint(publicKey), privateKey, publicKey, authorityId: a.record.id };
        published.push(k);
        if (a.record.state === 'active') active = k;
      }
    }
    if (!active) throw new TesseraError('TESSERA_ERR_CP_START_FAILED', 'the read-only CA has no active authority with a key to derive the JWT-SVID signing key from');
    this.#published = published;
    this.#active = active;
  }

  active(): JwtSigningKey {
    return this.#active;
  }

  published(): JwtAuthority[] {
    return this.#published.map((k) => ({ keyId: k.keyId, publicKey: k.publicKey }));
  }

  /** Which authority each published key came from, for the start-up log. */
  sources(): { readonly kid: string; readonly authority: string }[] {
    return this.#published.map((k) => ({ kid: k.keyId, authority: k.authorityId }));
  }
}
