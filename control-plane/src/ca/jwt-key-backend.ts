// Where the JWT-SVID signing keys are kept, as JwtKeys sees it: the data dir's jwt/ directory (this process alone),
// or the database the replicas share (compare-and-swap on a version, periodic rotation by the leader only).
import { createHash, type KeyObject } from 'node:crypto';

export interface JwtKeyRecord {
  readonly kid: string;
  readonly createdAtMs: number;
  /** Set when a successor took over; published until publishUntilMs. */
  readonly retiredAtMs?: number;
  readonly publishUntilMs?: number;
}

export interface LoadedJwtKeys {
  readonly records: readonly JwtKeyRecord[];
  readonly keys: ReadonlyMap<string, KeyObject>;
  /** The committed version (shared); null where there is one writer. */
  readonly version: number | null;
}

export interface JwtKeyBackend {
  readonly shared: boolean;
  /** null: no key was ever committed. */
  load(): Promise<LoadedJwtKeys | null>;
  /** Shared: the committed version alone, so a replica reads the keys only when they changed. */
  version?(): Promise<number | null>;
  /**
   * Commits the new list (`keys` holds every key it names; `added`/`removed` say which kids changed). Shared: only if
   * the committed version is still `expected` (else TESSERA_ERR_CA_CONFLICT), with `fenced` only while leading.
   */
  save(next: LoadedJwtKeys, change: { readonly added: readonly string[]; readonly removed: readonly string[] }, expected: number | null, fenced: boolean): Promise<number | null>;
}

/** RFC 7638 JWK thumbprint of an EC public key: a stable, content-derived kid. */
export function jwkThumbprint(publicKey: KeyObject): string {
  const j = publicKey.export({ format: 'jwk' }) as { crv: string; kty: string; x: string; y: string };
  return createHash('sha256').update(JSON.stringify({ crv: j.crv, kty: j.kty, x: j.x, y: j.y })).digest('base64url');
}
