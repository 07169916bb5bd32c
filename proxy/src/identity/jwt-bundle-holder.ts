// The JWT bundles in force in one proxy (trust domain → kid → public key): one writer (the config watch), read by
// the Workload API (ValidateJWTSVID, FetchJWTBundles) and observed so bundle streams push every change.
import { type KeyObject, createPublicKey } from 'node:crypto';
import type { JwtAuthorityMsg } from '../../../common/contract/identity-v1.js';
import type { JwtBundle, JwtBundleSet } from '../../../common/spiffe/jwt-svid.js';
import { jwtAuthoritiesKey } from '../../../common/spiffe/spiffe-bundle.js';

/** The wire's JWT authorities as a bundle; throws on a key that is not a DER public key or a repeated kid. */
export function jwtBundleFromWire(authorities: readonly JwtAuthorityMsg[]): JwtBundle {
  const out = new Map<string, KeyObject>();
  for (const a of authorities) {
    if (!a.key_id) throw new Error('a JWT authority has no key id');
    if (out.has(a.key_id)) throw new Error(`JWT key id ${a.key_id} appears twice`);
    try {
      out.set(a.key_id, createPublicKey({ key: Buffer.from(a.public_key), format: 'der', type: 'spki' }));
    } catch (e) {
      throw new Error(`JWT key ${a.key_id} is not a DER public key: ${(e as Error).message}`);
    }
  }
  return out;
}

function contentKey(set: JwtBundleSet): string {
  return JSON.stringify([...set].sort(([a], [b]) => a.localeCompare(b)).map(([td, b]) => [td, jwtAuthoritiesKey([...b].map(([keyId, publicKey]) => ({ keyId, publicKey })))]));
}

export class JwtBundleHolder {
  #current: JwtBundleSet = new Map();
  #key = contentKey(new Map());
  readonly #listeners = new Set<() => void>();

  get current(): JwtBundleSet {
    return this.#current;
  }

  /** Installs a set; listeners run only when its content differs from the one in force. */
  set(next: JwtBundleSet): void {
    const key = contentKey(next);
    if (key === this.#key) return;
    this.#current = next;
    this.#key = key;
    for (const l of this.#listeners) l();
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
