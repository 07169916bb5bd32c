// JWT-SVID signing keys carried by a read-only CA directory (a Kubernetes Secret), for replicas that share nothing
// else: `jwt-signing-key.pem` signs; `jwt-signing-key.next.pem` is published before it signs, and
// `jwt-signing-key.previous.pem` after it stopped, so a rotation is three rollouts of the Secret, as a CA's prepare,
// activate and retire are, and no token is refused between them. The keys derived from the CA's keys
// (derived-jwt-keys.ts) stay published beside them, and sign while there is no `jwt-signing-key.pem`: adopting the
// files (`.next` first) and giving them up (`.previous` last) are rotations like any other (audit 61k F1: the files
// replaced the derived keys outright, and every replica's tokens were refused by the others across that rollout).
// Without the files, an offline root's plug-in Secret derives its key from its intermediate's, which changes at once
// when that is renewed (audit 61h F2).
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { TesseraError } from '../../../common/errors.js';
import type { JwtAuthority } from '../../../common/spiffe/spiffe-bundle.js';
import { FileRefused, readSmallFileBytes } from '../../../shared-io/bounded-read.js';
import { keyExposure, processIdentity } from '../../../shared-io/key-file-exposure.js';
import { jwkThumbprint } from './jwt-key-backend.js';
import type { JwtKeySet, JwtSigningKey } from './jwt-keys.js';

export const JWT_KEY_FILES = { previous: 'jwt-signing-key.previous.pem', current: 'jwt-signing-key.pem', next: 'jwt-signing-key.next.pem' } as const;
type Slot = keyof typeof JWT_KEY_FILES;

/** A PEM key is a few hundred bytes: a FIFO, a device or a file of gigabytes is refused before it is read. */
const MAX_KEY_BYTES = 64 * 1024;

export type JwtKeyFiles = Partial<Record<Slot, JwtSigningKey>>;

/** The keys of `dir`'s jwt-signing-key files (each optional), or null when it has none of them. */
export function readJwtKeyFiles(dir: string): JwtKeyFiles | null {
  const me = processIdentity();
  const keys: JwtKeyFiles = {};
  const seen = new Map<string, string>();
  for (const slot of ['previous', 'current', 'next'] as const) {
    const file = join(dir, JWT_KEY_FILES[slot]);
    if (!present(file)) continue;
    const key = load(file, me);
    const twin = seen.get(key.keyId);
    // One kid twice in the bundle makes the whole document unreadable to its validators (a copy of the current key
    // as .next, where a new one was meant).
    if (twin) throw corrupt(file, `it holds the same key as ${twin}: each of the jwt-signing-key files must be a key of its own`);
    seen.set(key.keyId, file);
    keys[slot] = key;
  }
  return seen.size > 0 ? keys : null;
}

/** Which jwt-signing-key files `dir` holds (by name), for a writable CA to say it does not read them. */
export function jwtKeyFileNames(dir: string): string[] {
  return Object.values(JWT_KEY_FILES).filter((name) => present(join(dir, name)));
}

/** Present unless it does not exist: a link that leads nowhere, or an entry this process cannot read, is refused by load(). */
function present(file: string): boolean {
  try {
    lstatSync(file);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

function load(file: string, me: ReturnType<typeof processIdentity>): JwtSigningKey {
  let pem: Buffer;
  try {
    pem = readSmallFileBytes(file, MAX_KEY_BYTES, (st) => {
      const exposure = keyExposure(st, me);
      if (exposure) throw new TesseraError('TESSERA_ERR_CA_KEY_EXPOSED', `${file}: ${exposure}; a JWT signing key must be 0600 or 0400 (0440 with the process's group)`, { file });
    });
  } catch (e) {
    if (e instanceof TesseraError) throw e;
    if (e instanceof FileRefused) throw corrupt(file, e.message);
    throw corrupt(file, `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (e) {
    throw corrupt(file, /ENCRYPTED/.test(pem.toString('latin1')) ? 'the key is encrypted; it must not be' : `not a private key (${(e as Error).message})`);
  }
  // ES256 only: what JWT-SVIDs are signed with here, and what every validator of this trust domain expects.
  if (privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw corrupt(file, 'a JWT signing key must be ECDSA P-256');
  const publicKey = createPublicKey(privateKey);
  return { keyId: jwkThumbprint(publicKey), privateKey, publicKey };
}

function corrupt(file: string, why: string): TesseraError {
  return new TesseraError('TESSERA_ERR_CA_STATE_CORRUPT', `${file}: ${why}`, { file });
}

/** The files' keys with the derived ones: `jwt-signing-key.pem` signs when present, else the derived active key. */
export class SecretJwtKeys implements JwtKeySet {
  readonly #files: JwtKeyFiles;
  readonly #derived: JwtKeySet;

  constructor(files: JwtKeyFiles, derived: JwtKeySet) {
    this.#files = files;
    this.#derived = derived;
  }

  active(): JwtSigningKey {
    return this.#files.current ?? this.#derived.active();
  }

  published(): JwtAuthority[] {
    const own = [this.#files.previous, this.#files.current, this.#files.next].flatMap((k) => (k ? [{ keyId: k.keyId, publicKey: k.publicKey }] : []));
    return [...this.#derived.published(), ...own];
  }
}
