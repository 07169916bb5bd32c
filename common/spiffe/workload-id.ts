// Which SPIFFE IDs may name a workload: one rule for join tokens, issuance through every attestor, peer SVIDs,
// edge clients and JWT-SVID subjects. The bare trust-domain ID (`spiffe://td`) names the trust domain itself
// (X509-SVID spec), and the control plane's own ID is never issued to a caller nor taken as a JWT-SVID's subject.
import { TesseraError } from '../errors.js';
import type { SpiffeId } from './spiffe-id.js';
import type { TrustDomain } from './trust-domain.js';

/** The path of the control plane's own SPIFFE ID; no caller can be issued it. */
export const CONTROL_PLANE_PATH = '/tessera/control-plane';

export function controlPlaneIdString(td: TrustDomain): string {
  return `${td.idString()}${CONTROL_PLANE_PATH}`;
}

/** True when the ID can name a workload at all: it has a path (parsing already refused "", "/", "//", ".."). */
export function isWorkloadId(id: SpiffeId): boolean {
  return id.path !== '';
}

/**
 * Why `id` is reserved in its own trust domain — the bare trust-domain ID (it names the trust domain) or the control
 * plane's own ID — or undefined for a workload ID. The one rule for what is issued (checkIssuableId) and what is
 * accepted as a JWT-SVID's subject, of this trust domain or a federated one (jwt-svid.ts).
 */
export function reservedIdReason(id: SpiffeId): string | undefined {
  if (!isWorkloadId(id)) return `${id} is the bare trust-domain ID, which names the trust domain, not a workload`;
  if (id.path === CONTROL_PLANE_PATH) return `${id} is the control plane's own ID`;
  return undefined;
}

/** The issuance rule: a workload ID of this trust domain, not reserved. Throws TESSERA_ERR_ISSUANCE_RESERVED_ID. */
export function checkIssuableId(id: SpiffeId, td: TrustDomain): void {
  if (isWorkloadId(id) && !id.memberOf(td)) throw new TesseraError('TESSERA_ERR_ISSUANCE_RESERVED_ID', `${id} is not in trust domain ${td.name}`);
  const reserved = reservedIdReason(id);
  if (reserved !== undefined) throw new TesseraError('TESSERA_ERR_ISSUANCE_RESERVED_ID', reserved);
}
