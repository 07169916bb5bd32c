// JWT-SVID signing keys carried by a read-only CA directory (a Kubernetes Secret), for replicas that share nothing
// else: `jwt-signing-key.pem` signs; `jwt-signing-key.next.pem` is published before it signs, and
// `jwt-signing-key.previous.pem` after it stopped, so a rotation is three rollouts of the Secret, as a CA's prepare,
// activate and retire are, and no token is refused between them. Without them the keys are derived from the CA's keys
// (derived-jwt-keys.ts), which for an offline root's plug-in Secret means its intermediate's: renewing it changed the
// JWT key at once, nothing published ahead, tokens refused across the rollout (audit 61h F2).
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TesseraError } from '../../../common/errors.js';
import type { JwtAuthority } from '../../../common/spiffe/spiffe-bundle.js';
import { keyExposure, processIdentity } from '../../../shared-io/key-file-exposure.js';
import { jwkThumbprint } from './jwt-key-backend.js';
import type { JwtKeySet, JwtSigningKey } from './jwt-keys.js';

export const JWT_KEY_FILES = { previous: 'jwt-signing-key.previous.pem', current: 'jwt-signing-key.pem', next: 'jwt-signing-key.next.pem' } as const;

/** The keys of `dir`'s jwt-signing-key files, or null when it has no jwt-signing-key.pem (and no other of them). */
export function readJwtKeyFiles(dir: string): SecretJwtKeys | null {
  const path = (name: string) => join(dir, name);
  const present = (name: string) => existsSync(path(name));
  if (!present(JWT_KEY_FILES.current)) {
    const stray = [JWT_KEY_FILES.previous, JWT_KEY_FILES.next].find(present);
    if (stray) throw new TesseraError('TESSERA_ERR_CA_STATE_CORRUPT', `${path(stray)} without ${JWT_KEY_FILES.current}: the key that signs is that one`, { file: path(stray) });
    return null;
  }
  const me = processIdentity();
  const load = (name: string): JwtSigningKey => {
    const file = path(name);
    const exposure = keyExposure(statSync(file), me);
    if (exposure) throw new TesseraError('TESSERA_ERR_CA_KEY_EXPOSED', `${file}: ${exposure}; a JWT signing key must be 0600 or 0400 (0440 with the process's group)`, { file });
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey(readFileSync(file));
    } catch (e) {
      throw new TesseraError('TESSERA_ERR_CA_STATE_CORRUPT', `${file}: not a private key (${(e as Error).message})`, { file });
    }
    // ES256 only: what JWT-SVIDs are signed with here, and what every validator of this trust domain expects.
    if (privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new TesseraError('TESSERA_ERR_CA_STATE_CORRUPT', `${file}: a JWT signing key must be ECDSA P-256`, { file });
    const publicKey = createPublicKey(privateKey);
    return { keyId: jwkThumbprint(publicKey), privateKey, publicKey };
  };
  const active = load(JWT_KEY_FILES.current);
  const previous = present(JWT_KEY_FILES.previous) ? [load(JWT_KEY_FILES.previous)] : [];
  const next = present(JWT_KEY_FILES.next) ? [load(JWT_KEY_FILES.next)] : [];
  return new SecretJwtKeys(active, [...previous, active, ...next]);
}

export class SecretJwtKeys implements JwtKeySet {
  readonly #active: JwtSigningKey;
  readonly #published: readonly JwtSigningKey[];

  constructor(active: JwtSigningKey, published: readonly JwtSigningKey[]) {
    this.#active = active;
    this.#published = published;
  }

  active(): JwtSigningKey {
    return this.#active;
  }

  published(): JwtAuthority[] {
    return this.#published.map((k) => ({ keyId: k.keyId, publicKey: k.publicKey }));
  }
}
