// TPM attestation nonces: sealed, not stored. A nonce carries its own expiry and a random id under an HMAC, so
// issuing one keeps no state (any number of challenges cost no memory) and any replica holding the same key can
// check it; what must be remembered is only which nonces were spent, behind NonceLedger ("spend this once"),
// which the shared store can back across replicas. The in-memory ledger serves one process.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../../../common/clock.js';
import { TesseraError } from '../../../common/errors.js';

const VERSION = 0x01;
/** version (1) | expiresAtMs (8, big-endian) | id (16 random bytes) | HMAC-SHA256 of the 25 bytes before (32). */
const BODY_BYTES = 1 + 8 + 16;
export const TPM_NONCE_BYTES = BODY_BYTES + 32;
const MAC_CONTEXT = Buffer.from('tessera tpm attestation nonce v1\0');

/** Remembers spent nonces until they expire: the single-use rule. */
export interface NonceLedger {
  /**
   * Records `id` as spent, to be remembered until `expiresAtMs` (after that the seal refuses the nonce anyway).
   * Resolves false when it was spent already — by anyone, anywhere the ledger is shared: one atomic step (an
   * INSERT that fails on a duplicate key), never a read followed by a write.
   */
  spendOnce(id: string, expiresAtMs: number, nowMs: number): Promise<boolean>;
}

export interface OpenedNonce {
  /** 32 lower-case hex characters: the ledger key. */
  readonly id: string;
  readonly expiresAtMs: number;
}

export interface TpmNonceIssuerOptions {
  readonly clock: Clock;
  readonly ttlMs: number;
  /** HMAC key, at least 32 bytes; replicas that check each other's nonces share it. Default: random per process. */
  readonly key?: Uint8Array;
}

export class TpmNonceIssuer {
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #key: Buffer;

  constructor(opts: TpmNonceIssuerOptions) {
    if (opts.key !== undefined && opts.key.length < 32) throw new TesseraError('TESSERA_ERR_CONFIG_INVALID', 'the TPM nonce key must be at least 32 bytes');
    this.#clock = opts.clock;
    this.#ttlMs = opts.ttlMs;
    this.#key = opts.key ? Buffer.from(opts.key) : randomBytes(32);
  }

  /** A fresh nonce, valid until the returned expiry. */
  issue(): { readonly nonce: Buffer; readonly expiresAtMs: number } {
    const expiresAtMs = this.#clock.nowMs() + this.#ttlMs;
    const body = Buffer.alloc(BODY_BYTES);
    body[0] = VERSION;
    body.writeBigUInt64BE(BigInt(expiresAtMs), 1);
    randomBytes(16).copy(body, 9);
    return { nonce: Buffer.concat([body, this.#mac(body)]), expiresAtMs };
  }

  /**
   * Checks the seal and the expiry. Throws TESSERA_ERR_ATTESTATION_TPM_NONCE_UNKNOWN for anything this issuer (or
   * a replica with its key) did not make, TESSERA_ERR_ATTESTATION_TPM_NONCE_EXPIRED once its time is up.
   */
  open(nonce: Uint8Array): OpenedNonce {
    if (nonce.length !== TPM_NONCE_BYTES || nonce[0] !== VERSION) {
      throw new TesseraError('TESSERA_ERR_ATTESTATION_TPM_NONCE_UNKNOWN', undefined, { reason: `not a nonce of this control plane (${nonce.length} bytes)` });
    }
    const bytes = Buffer.from(nonce);
    const body = bytes.subarray(0, BODY_BYTES);
    if (!timingSafeEqual(this.#mac(body), bytes.subarray(BODY_BYTES))) {
      throw new TesseraError('TESSERA_ERR_ATTESTATION_TPM_NONCE_UNKNOWN', undefined, { reason: 'the nonce seal does not verify' });
    }
    const expiresAtMs = Number(body.readBigUInt64BE(1));
    if (expiresAtMs <= this.#clock.nowMs()) {
      throw new TesseraError('TESSERA_ERR_ATTESTATION_TPM_NONCE_EXPIRED', undefined, { reason: `expired ${new Date(expiresAtMs).toISOString()}` });
    }
    return { id: body.subarray(9).toString('hex'), expiresAtMs };
  }

  #mac(body: Buffer): Buffer {
    return createHmac('sha256', this.#key).update(MAC_CONTEXT).update(body).digest();
  }
}

/**
 * The spent-nonce record of one process. Entries leave once their nonce has expired; the cap only bounds memory
 * against a flood of valid quotes (each needs a certified TPM key), refusing as rate-limited beyond it.
 */
export class InMemoryNonceLedger implements NonceLedger {
  readonly #spent = new Map<string, number>();
  readonly #max: number;

  constructor(maxEntries = 100_000) {
    this.#max = maxEntries;
  }

  async spendOnce(id: string, expiresAtMs: number, nowMs: number): Promise<boolean> {
    this.#prune(nowMs);
    if (this.#spent.has(id)) return false;
    if (this.#spent.size >= this.#max) throw new TesseraError('TESSERA_ERR_ISSUANCE_RATE_LIMITED', 'too many TPM attestations within one nonce lifetime');
    this.#spent.set(id, expiresAtMs);
    return true;
  }

  get size(): number {
    return this.#spent.size;
  }

  /** Insertion order is expiry order (one lifetime for every nonce), so pruning stops at the first live entry. */
  #prune(nowMs: number): void {
    for (const [id, exp] of this.#spent) {
      if (exp > nowMs) break;
      this.#spent.delete(id);
    }
  }
}
