// Which SPIFFE IDs may name a workload: one rule for join tokens, issuance through every attestor, peer SVIDs
// and edge clients. The bare trust-domain ID (`spiffe://td`) names the trust domain itself (X509-SVID spec),
// and the control plane's own ID is never issued to a caller.
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

/** The issuance rule: a workload ID of this trust domain, not reserved. Throws TESSERA_ERR_ISSUANCE_RESERVED_ID. */
export function checkIssuableId(id: SpiffeId, td: TrustDomain): void {
  if (!isWorkloadId(id)) throw new TesseraError('TESSERA_ERR_ISSUANCE_RESERVED_ID', `${id} is the bare trust-domain ID, which names the trust domain, not a workload`);
  if (!id.memberOf(td)) throw new TesseraError('TESSERA_ERR_ISSUANCE_RESERVED_ID', `${id} is not in trust domain ${td.name}`);
  if (id.path === CONTROL_PLANE_PATH) throw new TesseraError('TESSERA_ERR_ISSUANCE_RESERVED_ID', `${id} is the control plane's own ID`);
}
