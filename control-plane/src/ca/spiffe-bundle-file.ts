// <dataDir>/bundle.spiffe.json: the trust domain's SPIFFE bundle (X.509 authorities and JWT-SVID keys as a JWKS),
// public (0644), rewritten atomically whenever its keys or their sequence change. spiffe_sequence is a function of
// the keys kept in the store (bundle-sequence.ts): it grows with every change, survives restarts, and is the same on
// every replica sharing a database.
import { readFileSync } from 'node:fs';
import type { X509Certificate } from 'node:crypto';
import { type JwtAuthority, spiffeBundleDocument } from '../../../common/spiffe/spiffe-bundle.js';
import { writeFileAtomicSync } from './atomic-file.js';
import { bundleKeysDigest } from './bundle-sequence.js';

export const SPIFFE_BUNDLE_FILE = 'bundle.spiffe.json';
/** How often consumers should re-fetch the bundle (seconds): well inside the JWT key overlap. */
export const SPIFFE_REFRESH_HINT_SECONDS = 300;

export interface SpiffeBundleFileOptions {
  readonly path: string;
  /** The sequence of a key set (by bundleKeysDigest), from the store. */
  readonly sequenceFor: (keysDigest: string) => Promise<number>;
}

/** Writes the document when it differs from the file's; returns the sequence in force. */
export async function writeSpiffeBundleFile(o: SpiffeBundleFileOptions, x509Authorities: readonly X509Certificate[], jwtAuthorities: readonly JwtAuthority[]): Promise<number> {
  const docOf = (seq: number) => spiffeBundleDocument({ x509Authorities, jwtAuthorities, sequence: seq, refreshHintSeconds: SPIFFE_REFRESH_HINT_SECONDS });
  const seq = await o.sequenceFor(bundleKeysDigest(docOf(0)['keys'] as unknown[]));
  const text = `${JSON.stringify(docOf(seq), null, 2)}\n`;
  let existing: string | undefined;
  try {
    existing = readFileSync(o.path, 'utf8');
  } catch {
    existing = undefined; // absent: written below
  }
  if (existing !== text) writeFileAtomicSync(o.path, text, 0o644);
  return seq;
}
