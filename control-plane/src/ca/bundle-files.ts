// The data dir's two public bundle files, always written together: bundle.pem (what proxies and `svid fetch` take
// as their bootstrap trust anchor) and bundle.spiffe.json (the SPIFFE bundle: X.509 and JWT-SVID authorities).
// Written before the control plane is ready and again on every CA or JWT-key change, one write at a time (the
// sequence number comes from the store, one per key set, or on a read-only CA from its certificates).
import { join } from 'node:path';
import { describeError } from '../../../common/errors.js';
import type { JwtAuthority } from '../../../common/spiffe/spiffe-bundle.js';
import type { TrustBundle } from '../../../common/spiffe/trust-bundle.js';
import type { ControlPlaneLogger } from '../logger.js';
import type { MetaStore } from '../store/store-contract.js';
import { writeFileAtomicSync } from './atomic-file.js';
import { type FixedCaView, secretBundleSequence, sharedBundleSequence } from './bundle-sequence.js';
import { SPIFFE_BUNDLE_FILE, writeSpiffeBundleFile } from './spiffe-bundle-file.js';

export const BUNDLE_FILE = 'bundle.pem';

export interface BundleFilesOptions {
  readonly dataDir: string;
  readonly bundle: () => TrustBundle;
  readonly jwtAuthorities: () => readonly JwtAuthority[];
  /** Where spiffe_sequence of each key set is kept (bundle-sequence.ts): the same on every replica. */
  readonly meta: MetaStore;
  /** A read-only CA: spiffe_sequence is read from its certificates and removals instead (secretBundleSequence). */
  readonly fixedCa?: FixedCaView | undefined;
  readonly log: ControlPlaneLogger;
}

export class BundleFiles {
  readonly pemPath: string;
  readonly #o: BundleFilesOptions;
  readonly #spiffe: { readonly path: string; readonly sequenceFor: (keysDigest: string) => Promise<number> };
  /** Writes run one at a time, each with the bundle as it is when its turn comes. */
  #writing: Promise<void> = Promise.resolve();

  constructor(o: BundleFilesOptions) {
    this.#o = o;
    this.pemPath = join(o.dataDir, BUNDLE_FILE);
    this.#spiffe = { path: join(o.dataDir, SPIFFE_BUNDLE_FILE), sequenceFor: o.fixedCa ? secretBundleSequence(o.fixedCa) : sharedBundleSequence(o.meta) };
  }

  /** Rejects when a file cannot be written (at start: the control plane does not start without them). */
  write(): Promise<void> {
    const next = this.#writing.then(async () => {
      const bundle = this.#o.bundle();
      writeFileAtomicSync(this.pemPath, bundle.toPem(), 0o644);
      await writeSpiffeBundleFile(this.#spiffe, bundle.authorities, this.#o.jwtAuthorities());
    });
    this.#writing = next.catch(() => {});
    return next;
  }

  /** After a change while serving: a failed write is logged; the change itself stands and is pushed anyway. */
  rewrite(): Promise<void> {
    return this.write().catch((e: unknown) => this.#o.log.error({ err: describeError(e) }, 'writing the bundle files failed'));
  }
}
