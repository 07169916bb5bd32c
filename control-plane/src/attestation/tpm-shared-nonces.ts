// The TPM attestor on the shared store: its nonce seal key is the database's (created by the first replica that
// needs it, read by every other) and its spent-nonce ledger is a table, so a challenge one replica answered is
// accepted by any replica behind the same address, and only once. Nothing here is per-process random.
import { randomBytes } from 'node:crypto';
import type { Clock } from '../../../common/clock.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import type { TpmAttestorConfig } from '../config/tpm-config.js';
import type { NonceStore } from '../store/store-contract.js';
import { type TpmAttestor, createTpmAttestor } from './tpm-attestor.js';
import type { NonceLedger } from './tpm-nonce.js';

/** The spent-nonce record in the store; expired rows go at most once per `pruneEveryMs`, before a spend. */
export class StoreNonceLedger implements NonceLedger {
  readonly #store: Pick<NonceStore, 'spendOnce' | 'prune'>;
  readonly #pruneEveryMs: number;
  #nextPruneMs = 0;

  constructor(store: Pick<NonceStore, 'spendOnce' | 'prune'>, pruneEveryMs: number) {
    this.#store = store;
    this.#pruneEveryMs = pruneEveryMs;
  }

  async spendOnce(id: string, expiresAtMs: number, nowMs: number): Promise<boolean> {
    // Attestations are rare (start, and an SVID that lapsed): pruning on their path keeps the table at about one
    // nonce lifetime of rows without a timer of its own.
    if (nowMs >= this.#nextPruneMs) {
      this.#nextPruneMs = nowMs + this.#pruneEveryMs;
      await this.#store.prune(nowMs);
    }
    return this.#store.spendOnce(id, expiresAtMs);
  }
}

export interface SharedTpmDeps {
  readonly trustDomain: TrustDomain;
  readonly clock: Clock;
  readonly nonces: NonceStore;
}

/** Reads caFile (TESSERA_ERR_CONFIG_UNREADABLE / _INVALID) and the shared seal key (TESSERA_ERR_STORE_UNAVAILABLE). */
export async function openTpmAttestor(config: TpmAttestorConfig, deps: SharedTpmDeps): Promise<TpmAttestor> {
  const nonceKey = await deps.nonces.sealKey(randomBytes(32));
  return createTpmAttestor(config, { trustDomain: deps.trustDomain, clock: deps.clock, ledger: new StoreNonceLedger(deps.nonces, config.nonceTtlMs), nonceKey });
}
