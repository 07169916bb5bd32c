// TPM attestation (the third attestor, beside join tokens and Kubernetes tokens): the caller proves that a TPM
// holding an attestation key certified by attestors.tpm.caFile quoted, just now, a nonce this control plane issued,
// bound to the key of the CSR it wants signed. Order: quote and signature parse → nonce seal and expiry → AK chain →
// (with a PCR policy) the chain certifies an attestation key → signature → binding (extraData) → PCR policy →
// SPIFFE ID → nonce spent once.
import { X509Certificate } from 'node:crypto';
import type { Clock } from '../../../common/clock.js';
import type { TpmEvidenceMsg } from '../../../common/contract/identity-v1.js';
import { TesseraError } from '../../../common/errors.js';
import { decodeCertificates } from '../../../common/pki/pem.js';
import { tpmQualifyingData } from '../../../common/pki/tpm-binding.js';
import type { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import { readNamedFileSync } from '../../../shared-io/read-named-file.js';
import type { TpmAttestorConfig } from '../config/tpm-config.js';
import { type CertifiedAk, verifyAkChain } from './tpm-ak-chain.js';
import { InMemoryNonceLedger, type NonceLedger, TpmNonceIssuer } from './tpm-nonce.js';
import { type PcrPolicy, checkPcrPolicy, verifyTpmSignature } from './tpm-quote-verifier.js';
import { tpmSpiffeId } from './tpm-spiffe-id.js';
import { type TpmHashName, parseTpmQuote, parseTpmSignature } from './tpm-structures.js';

/** The evidence of a SignSvid request (the TpmEvidence message). */
export interface TpmEvidence {
  readonly akCertChain: readonly Uint8Array[];
  readonly quote: Uint8Array;
  readonly signature: Uint8Array;
  readonly nonce: Uint8Array;
}

/** The wire message as evidence; absent fields become empty (and are refused as malformed by attest()). */
export function tpmEvidenceFromMessage(m: TpmEvidenceMsg | null | undefined): TpmEvidence {
  const empty = Buffer.alloc(0);
  return { akCertChain: m?.ak_cert_chain ?? [], quote: m?.quote ?? empty, signature: m?.signature ?? empty, nonce: m?.nonce ?? empty };
}

export interface TpmChallenge {
  readonly nonce: Buffer;
  readonly expiresAtMs: number;
  readonly pcrBank: TpmHashName;
  readonly pcrs: readonly number[];
}

/** What TPM attestation concludes; an AttestedIdentity once attested-identity.ts's AttestorName has 'tpm'. */
export interface TpmAttestedIdentity {
  readonly spiffeId: SpiffeId;
  readonly attestor: 'tpm';
  /** "tpm:<first 32 hex of SHA-256 of the AK public key>": for audit and inventory. */
  readonly attestedAs: string;
  /** The same: one TPM is one instance (its rate-limit bucket across attestations). */
  readonly instance: string;
}

export interface TpmAttestorOptions {
  readonly trustDomain: TrustDomain;
  /** The CA certificates that certify attestation keys. */
  readonly anchors: readonly X509Certificate[];
  readonly pcrPolicy?: PcrPolicy;
  readonly idTemplate: string;
  readonly nonces: TpmNonceIssuer;
  readonly ledger: NonceLedger;
  readonly clock: Clock;
}

/** Without a policy, proxies quote the firmware and boot PCRs; the values are then not checked. */
const DEFAULT_SELECTION = { pcrBank: 'sha256', pcrs: [0, 1, 2, 3, 4, 5, 6, 7] } as const;

export class TpmAttestor {
  readonly #o: TpmAttestorOptions;

  constructor(opts: TpmAttestorOptions) {
    if (opts.anchors.length === 0) throw new TesseraError('TESSERA_ERR_CONFIG_INVALID', 'attestors.tpm.caFile holds no certificate');
    this.#o = opts;
  }

  /** A fresh nonce and the PCRs to quote (the TpmChallenge answer). */
  challenge(): TpmChallenge {
    const { nonce, expiresAtMs } = this.#o.nonces.issue();
    const policy = this.#o.pcrPolicy;
    const selection = policy ? { pcrBank: policy.bank, pcrs: [...policy.pcrs.keys()].sort((a, b) => a - b) } : DEFAULT_SELECTION;
    return { nonce, expiresAtMs, ...selection };
  }

  /**
   * Attests `e` for a CSR whose SubjectPublicKeyInfo is `csrSpkiDer` (canonical DER, as readCsr gives it). The
   * nonce is spent here, as the last step: a request refused later (a rate limit) needs a new challenge.
   */
  async attest(e: TpmEvidence, csrSpkiDer: Uint8Array): Promise<TpmAttestedIdentity> {
    const quote = parseTpmQuote(e.quote);
    const signature = parseTpmSignature(e.signature);
    const nonce = this.#o.nonces.open(e.nonce);
    const ak: CertifiedAk = verifyAkChain(e.akCertChain, this.#o.anchors, this.#o.clock.nowMs());
    const attestedAs = `tpm:${ak.keyHash.slice(0, 32)}`;
    const known = (err: unknown): never => {
      // Refusals after the AK is known name it, so the audit line says which TPM was refused.
      if (err instanceof TesseraError) throw new TesseraError(err.code, err.message, { ...err.details, attestedAs });
      throw err;
    };
    try {
      // PCR values are only as true as the key is restricted: an unrestricted key (a DevID) signs whatever quote its
      // holder writes. The certificate cannot show key attributes; its purpose says the CA certified an AK.
      if (this.#o.pcrPolicy && ak.notAttestationKey) {
        throw new TesseraError('TESSERA_ERR_ATTESTATION_TPM_AK_NOT_ATTESTATION_KEY', undefined, { reason: `${ak.notAttestationKey}; pcrPolicy needs a certified AK` });
      }
      verifyTpmSignature(e.quote, signature, ak.publicKey);
      if (!quote.extraData.equals(tpmQualifyingData(e.nonce, csrSpkiDer))) {
        throw new TesseraError('TESSERA_ERR_ATTESTATION_TPM_NONCE_MISMATCH', undefined, { reason: 'extraData is not SHA-256(nonce || CSR public key)' });
      }
      if (this.#o.pcrPolicy) checkPcrPolicy(quote, signature.hash, this.#o.pcrPolicy);
      const spiffeId = tpmSpiffeId(this.#o.trustDomain, this.#o.idTemplate, ak);
      if (!(await this.#o.ledger.spendOnce(nonce.id, nonce.expiresAtMs, this.#o.clock.nowMs()))) {
        throw new TesseraError('TESSERA_ERR_ATTESTATION_TPM_NONCE_REPLAYED', undefined, { reason: `nonce ${nonce.id.slice(0, 8)}… was spent already` });
      }
      return { spiffeId, attestor: 'tpm', attestedAs, instance: attestedAs };
    } catch (err) {
      return known(err);
    }
  }
}

export interface TpmAttestorDeps {
  readonly trustDomain: TrustDomain;
  readonly clock: Clock;
  /** The spent-nonce record; default in memory (one process). Replicas pass one backed by the shared store. */
  readonly ledger?: NonceLedger;
  /** The nonce HMAC key; default random per process. Replicas behind one address must share it. */
  readonly nonceKey?: Uint8Array;
}

/** Builds the attestor from its config: reads caFile now (TESSERA_ERR_CONFIG_UNREADABLE / _INVALID). */
export function createTpmAttestor(config: TpmAttestorConfig, deps: TpmAttestorDeps): TpmAttestor {
  const pem = readNamedFileSync({ path: config.caFile, what: 'attestors.tpm.caFile', code: 'TESSERA_ERR_CONFIG_UNREADABLE' });
  let anchors: X509Certificate[];
  try {
    anchors = decodeCertificates(pem.toString('utf8')).map((der) => new X509Certificate(der));
  } catch (e) {
    throw new TesseraError('TESSERA_ERR_CONFIG_INVALID', `attestors.tpm.caFile ${config.caFile}: not PEM certificates (${(e as Error).message})`);
  }
  return new TpmAttestor({
    trustDomain: deps.trustDomain,
    anchors,
    ...(config.pcrPolicy ? { pcrPolicy: config.pcrPolicy } : {}),
    idTemplate: config.idTemplate,
    nonces: new TpmNonceIssuer({ clock: deps.clock, ttlMs: config.nonceTtlMs, ...(deps.nonceKey ? { key: deps.nonceKey } : {}) }),
    ledger: deps.ledger ?? new InMemoryNonceLedger(),
    clock: deps.clock,
  });
}
