// The data dir's two public bundle files, always written together: bundle.pem (what proxies and `svid fetch` take
// as their bootstrap trust anchor) and bundle.spiffe.json (the SPIFFE bundle: X.509 and JWT-SVID authorities).
// Written before the control plane is ready and again on every CA or JWT-key change.
import { join } from 'node:path';
import { describeError } from '../../../common/errors.js';
import type { JwtAuthority } from '../../../common/spiffe/spiffe-bundle.js';
import type { TrustBundle } from '../../../common/spiffe/trust-bundle.js';
import type { ControlPlaneLogger } from '../logger.js';
import { writeFileAtomicSync } from './atomic-file.js';
import { SPIFFE_BUNDLE_FILE, writeSpiffeBundleFile } from './spiffe-bundle-file.js';

export const BUNDLE_FILE = 'bundle.pem';

export interface BundleFilesOptions {
  readonly dataDir: string;
  readonly bundle: () => TrustBundle;
  readonly jwtAuthorities: () => readonly JwtAuthority[];
  /** Persistent counter for spiffe_sequence. */
  readonly nextSequence: () => number;
  readonly log: ControlPlaneLogger;
}

export class BundleFiles {
  readonly pemPath: string;
  readonly #o: BundleFilesOptions;
  readonly #spiffe: { readonly path: string; readonly nextSequence: () => number };

  constructor(o: BundleFilesOptions) {
    this.#o = o;
    this.pemPath = join(o.dataDir, BUNDLE_FILE);
    this.#spiffe = { path: join(o.dataDir, SPIFFE_BUNDLE_FILE), nextSequence: o.nextSequence };
  }

  /** Throws when a file cannot be written (at start: the control plane does not start without them). */
  write(): void {
    const bundle = this.#o.bundle();
    writeFileAtomicSync(this.pemPath, bundle.toPem(), 0o644);
    writeSpiffeBundleFile(this.#spiffe, bundle.authorities, this.#o.jwtAuthorities());
  }

  /** After a change while serving: a failed write is logged; the change itself stands and is pushed anyway. */
  rewrite(): void {
    try {
      this.write();
    } catch (e) {
      this.#o.log.error({ err: describeError(e) }, 'writing the bundle files failed');
    }
  }
}
