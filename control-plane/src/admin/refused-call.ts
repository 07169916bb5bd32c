// How a gRPC call refused before it started is reported, whichever service refused it: audited, an attestation
// failure counted by reason, and a refused Watch counted by its stable code.
import type { Clock } from '../../../common/clock.js';
import { attestationFailureReason } from '../attestation/attested-identity.js';
import type { AuditLog } from '../store/store-contract.js';
import type { ControlPlaneMetrics } from './metrics.js';

/**
 * A streaming call refused before it started (bad SVID, banned caller, bad request, too many): audited, an
 * attestation failure counted by reason, and a refused Watch (`service`) counted by its code.
 */
export function refusedCall(event: string, metrics: ControlPlaneMetrics, audit: AuditLog, clock: Clock, service?: 'config' | 'discovery'): (code: string, caller: string, detail: string | undefined, spiffeId?: string) => void {
  return (code, caller, detail, spiffeId) => {
    if (code.startsWith('TESSERA_ERR_ATTESTATION_')) metrics.attestationFailures.inc({ reason: attestationFailureReason(code) });
    if (service) metrics.watchRefusals.inc({ service, code });
    audit.record(clock.nowMs(), { event, result: 'refused', code, caller, ...(spiffeId ? { spiffeId } : {}), ...(detail ? { reason: detail.slice(0, 200) } : {}) });
  };
}
