// What an attestor concludes: the SPIFFE ID the evidence proves, how (for audit), and for a join token (the one
// single-use credential) the token the issuance must spend in the commit that records the SVID.
import type { SpiffeId } from '../../../common/spiffe/spiffe-id.js';

export type AttestorName = 'join_token' | 'k8s_psat' | 'x509svid' | 'tpm';

export interface AttestedIdentity {
  readonly spiffeId: SpiffeId;
  readonly attestor: AttestorName;
  /** For audit and inventory, never a secret: "join_token:<hash prefix>", "k8s_psat:ns/x/sa/y", "x509svid:<serial>", "tpm:<AK key hash>". */
  readonly attestedAs: string;
  /** x509svid: the serial of the SVID presented (canonical lower-case hex), so a banned serial can be refused. */
  readonly serial?: string;
  /**
   * The one workload instance reusable evidence proves ("pod:<uid>" from a projected service-account token,
   * "tpm:<AK key hash>"): attesting again proves the same instance, so its rate-limit bucket stays its own.
   */
  readonly instance?: string;
  /**
   * A join token's hash: spent by the same store commit that records the signed SVID (InventoryStore.recordWithToken),
   * never before, so a replica killed mid-issuance leaves the token usable. Absent for reusable evidence (a TPM nonce
   * is spent while attesting: it is a free challenge, asked again at every attestation).
   */
  readonly joinTokenHash?: string;
}

/** The metric label for an attestation failure: the code's tail in lower case (a fixed set). */
export function attestationFailureReason(code: string): string {
  return code.startsWith('TESSERA_ERR_ATTESTATION_') ? code.slice('TESSERA_ERR_ATTESTATION_'.length).toLowerCase() : 'other';
}

/** The details an audit row copies from a refusal, when they are strings. */
const AUDITED_DETAILS = ['reason', 'svidCode', 'claimed', 'reviewed'] as const;

/**
 * What an audit row says of a refused attestation beyond its code: the failure's `reason`; for a client SVID, the
 * SVID rule it broke (`svidCode`, e.g. TESSERA_ERR_SVID_UNKNOWN_CRITICAL_EXTENSION); for a Kubernetes token, the
 * account it claims (`claimed`, "ns/<ns>/sa/<sa>") and the one TokenReview named instead (`reviewed`).
 */
export function refusalAuditFields(details: Readonly<Record<string, unknown>>): { reason?: string; svidCode?: string; claimed?: string; reviewed?: string } {
  const out: Record<string, string> = {};
  for (const k of AUDITED_DETAILS) if (typeof details[k] === 'string') out[k] = details[k];
  return out;
}
