// Why a Kubernetes attestation was refused, for its audit row and the control plane's warn log (audit 55c F3): the
// refusal's `reason` (a fixed phrase its thrower set: "TokenReview: HTTP 403", "aud lacks the configured audience"),
// the namespace and service account the token claims, and, when TokenReview named another account, that one. Never
// the token or any other part of it; the workload is told the code's catalogue text only (api/grpc-status.ts).
import { TesseraError, isTesseraError } from '../../../common/errors.js';
import { NAMESPACE, SA } from './k8s-token-review.js';

/** A projected token is a few KiB; a longer one is refused before anything is read from it. */
const MAX_DECODED_TOKEN = 16_384;
const SUBJECT = /^system:serviceaccount:([^:]+):([^:]+)$/;

/**
 * "ns/<ns>/sa/<sa>" as the token's `sub` states it, when it names a service account by Kubernetes' name rules (so
 * nothing else of the token can ride in); undefined otherwise. Read without verifying: for a refusal of the
 * signature or key (JWT_INVALID, JWT_UNKNOWN_KEY) nobody vouches for it.
 */
export function claimedAccount(token: string): string | undefined {
  const parts = token.length <= MAX_DECODED_TOKEN ? token.split('.') : [];
  if (parts.length !== 3) return undefined;
  try {
    const sub = (JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as { sub?: unknown } | null)?.sub;
    const m = typeof sub === 'string' ? SUBJECT.exec(sub) : null;
    return m && NAMESPACE.test(m[1]!) && SA.test(m[2]!) ? `ns/${m[1]}/sa/${m[2]}` : undefined;
  } catch {
    return undefined;
  }
}

/** The refusal with `reason` (its own, else the code's) and `claimed` in its details, as the audit row takes them. */
export function kubernetesRefusal(e: unknown, token: string): TesseraError {
  const err = isTesseraError(e) ? e : new TesseraError('TESSERA_ERR_ISSUANCE_INTERNAL', undefined, {}, { cause: e });
  const claimed = claimedAccount(token);
  const reason = typeof err.details['reason'] === 'string' ? err.details['reason'] : err.code.replace(/^TESSERA_ERR_/, '').toLowerCase();
  return new TesseraError(err.code, err.message, { ...err.details, reason, ...(claimed ? { claimed } : {}) }, { cause: err.cause });
}
