// Verdicts of peer SVID chains verified a moment ago: a workload opening Config/Watch, Discovery/Watch or Register
// stream after stream on one connection sent the same chain each time, and each open paid a full X.509 path check
// (~1–1.5 ms); 100 IDs × 10 Watch streams held the event loop ~1.5 s (left from audit 40a). A verdict is reused only for the
// exact chain bytes, against the same trust anchors, inside the path's validity window; bans are not judged here.
import { createHash } from 'node:crypto';
import type { TrustBundle } from '../../../common/spiffe/trust-bundle.js';

/** Verdicts kept by default: a few per workload identity of a large mesh. */
export const DEFAULT_MAX_SVID_VERDICTS = 4096;

/** What a chain proved when it was verified, and for how long that holds. */
export interface SvidVerdict<P> {
  readonly peer: P;
  /** The verified path's validity: latest NotBefore, earliest NotAfter (x509-svid.ts pathValidity). */
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
}

interface Entry<P> extends SvidVerdict<P> {
  readonly anchors: string;
}

/** One attestor's verdicts, least recently used dropped first. */
export class SvidVerdicts<P> {
  readonly #max: number;
  readonly #byChain = new Map<string, Entry<P>>();
  /** A bundle's anchors as one string (trust domain and every authority's SHA-256): what a verdict was made against. */
  readonly #anchorKeys = new WeakMap<TrustBundle, string>();

  constructor(max = DEFAULT_MAX_SVID_VERDICTS) {
    this.#max = Math.max(1, max);
  }

  get size(): number {
    return this.#byChain.size;
  }

  /**
   * The key of this exact chain: SHA-256 over every certificate's length and DER, leaf first. Never the serial or
   * subject: another certificate with the same names must be verified on its own, and so must the same leaf sent
   * with other intermediates.
   */
  static chainKey(chain: readonly Uint8Array[]): string {
    const h = createHash('sha256');
    const len = Buffer.alloc(4);
    for (const der of chain) {
      len.writeUInt32BE(der.length);
      h.update(len).update(der);
    }
    return h.digest('base64');
  }

  /** The verdict for this chain, when it was made against these anchors and `nowMs` is inside its validity. */
  get(chainKey: string, bundle: TrustBundle, nowMs: number): P | undefined {
    const e = this.#byChain.get(chainKey);
    if (!e) return undefined;
    // A rotated, added or retired authority changes the anchors; a path past its NotAfter is verified (and refused) anew.
    if (e.anchors !== this.#anchorsOf(bundle) || nowMs < e.notBeforeMs || nowMs > e.notAfterMs) {
      this.#byChain.delete(chainKey);
      return undefined;
    }
    this.#byChain.delete(chainKey);
    this.#byChain.set(chainKey, e);
    return e.peer;
  }

  /** Keeps a chain's verdict made against `bundle`; the least recently used is dropped past the bound. */
  set(chainKey: string, bundle: TrustBundle, verdict: SvidVerdict<P>): void {
    this.#byChain.delete(chainKey);
    this.#byChain.set(chainKey, { ...verdict, anchors: this.#anchorsOf(bundle) });
    if (this.#byChain.size > this.#max) this.#byChain.delete(this.#byChain.keys().next().value!);
  }

  #anchorsOf(bundle: TrustBundle): string {
    let k = this.#anchorKeys.get(bundle);
    if (k === undefined) {
      k = `${bundle.trustDomain.name} ${bundle.fingerprints().join(' ')}`;
      this.#anchorKeys.set(bundle, k);
    }
    return k;
  }
}
