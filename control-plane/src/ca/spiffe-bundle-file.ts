// <dataDir>/bundle.spiffe.json: the trust domain's SPIFFE bundle (X.509 authorities and JWT-SVID keys as a JWKS),
// public (0644), rewritten atomically whenever its keys change; spiffe_sequence grows with every change and
// survives restarts (a persistent counter), and stays put when a restart changes nothing.
import type { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type JwtAuthority, spiffeBundleDocument } from '../../../common/spiffe/spiffe-bundle.js';
import { writeFileAtomicSync } from './atomic-file.js';

export const SPIFFE_BUNDLE_FILE = 'bundle.spiffe.json';
/** How often consumers should re-fetch the bundle (seconds): well inside the JWT key overlap. */
export const SPIFFE_REFRESH_HINT_SECONDS = 300;

export interface SpiffeBundleFileOptions {
  readonly path: string;
  /** Persistent counter: the next sequence number. */
  readonly nextSequence: () => Promise<number>;
}

/** Writes the document when its keys differ from the file's; returns the sequence in force. */
export async function writeSpiffeBundleFile(o: SpiffeBundleFileOptions, x509Authorities: readonly X509Certificate[], jwtAuthorities: readonly JwtAuthority[]): Promise<number> {
  const keysOf = (seq: number) => spiffeBundleDocument({ x509Authorities, jwtAuthorities, sequence: seq, refreshHintSeconds: SPIFFE_REFRESH_HINT_SECONDS });
  const wanted = JSON.stringify(keysOf(0)['keys']);
  let existing: { keys?: unknown; spiffe_sequence?: unknown } | undefined;
  try {
    existing = JSON.parse(readFileSync(o.path, 'utf8')) as typeof existing;
  } catch {
    existing = undefined; // absent or torn by hand: rewritten below
  }
  if (existing && JSON.stringify(existing.keys) === wanted && typeof existing.spiffe_sequence === 'number') return existing.spiffe_sequence;
  const seq = await o.nextSequence();
  writeFileAtomicSync(o.path, `${JSON.stringify(keysOf(seq), null, 2)}\n`, 0o644);
  return seq;
}
