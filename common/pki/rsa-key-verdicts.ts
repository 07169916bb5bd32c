// The verdicts of the RSA key rules (rsa-key-strength.ts) by key, so each distinct key is judged once: a federated
// peer serving the same keys on every fetch, or one key 256 times, costs one check per key, not per entry and fetch.
// The judging itself is injected (the control plane's runs on a worker thread:
// control-plane/src/issuance/rsa-key-worker.ts); what is remembered is bounded (the least recently used verdict goes
// first), so a peer that rotates fresh keys only costs the checks of its own keys. Two askers of one key while it is
// judged share the one check; a queued check is dropped only once every one of its askers has left.
import { type KeyObject, createHash } from 'node:crypto';

/** Why this RSA key (SubjectPublicKeyInfo DER) must not be certified, or null; `urgent` checks go before the others. */
export type RsaJudge = (spkiDer: Buffer, urgent: boolean, gone?: () => boolean) => Promise<string | null>;

/** How many verdicts are remembered: ~200 bytes each; far more keys than any mesh's CSRs and peers hold at once. */
export const RSA_VERDICTS_KEPT = 1024;

export class RsaKeyVerdicts {
  readonly #judge: RsaJudge;
  readonly #max: number;
  /** Insertion order is recency: a hit is moved to the end, the first entry is the one evicted. */
  readonly #known = new Map<string, string | null>();
  readonly #pending = new Map<string, { readonly judged: Promise<string | null>; readonly askers: (() => boolean)[] }>();

  constructor(o: { readonly judge: RsaJudge; readonly maxEntries?: number }) {
    this.#judge = o.judge;
    this.#max = Math.max(1, o.maxEntries ?? RSA_VERDICTS_KEPT);
  }

  /**
   * Why this key must not be certified, or null; non-RSA keys are not judged here. `urgent`: a caller is waiting
   * (a CSR), so its check goes before the background ones (federated bundles). Rejects when the judge fails.
   */
  weakness(key: KeyObject, urgent = false, gone?: () => boolean): Promise<string | null> {
    if (key.asymmetricKeyType !== 'rsa') return Promise.resolve(null);
    const spki = key.export({ type: 'spki', format: 'der' });
    const id = createHash('sha256').update(spki).digest('hex');
    if (this.#known.has(id)) {
      const verdict = this.#known.get(id) ?? null;
      this.#known.delete(id);
      this.#known.set(id, verdict);
      return Promise.resolve(verdict);
    }
    const pending = this.#pending.get(id);
    // An asker that cannot leave keeps the shared check wanted for good.
    if (pending) {
      pending.askers.push(gone ?? (() => false));
      return pending.judged;
    }
    const askers = [gone ?? (() => false)];
    const judged = this.#judge(spki, urgent, () => askers.every((left) => left()))
      .then((verdict) => {
        this.#remember(id, verdict);
        return verdict;
      })
      .finally(() => this.#pending.delete(id));
    this.#pending.set(id, { judged, askers });
    return judged;
  }

  #remember(id: string, verdict: string | null): void {
    this.#known.set(id, verdict);
    while (this.#known.size > this.#max) this.#known.delete(this.#known.keys().next().value as string);
  }
}
