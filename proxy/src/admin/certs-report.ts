// /certs: what identity the proxy holds and what it actually serves. The served serial comes from a fresh TLS
// handshake to the proxy's own inbound listener, so a reload that did not take effect is visible.
import { fingerprintOf } from '../../../common/spiffe/trust-bundle.js';
import type { IdentitySnapshot } from '../identity/identity-snapshot.js';
import { probeServedSerial, type ServedTarget } from './served-check.js';

export interface CertsReport {
  readonly spiffeId: string | null;
  readonly serial: string | null;
  readonly notBefore: string | null;
  readonly notAfter: string | null;
  readonly source: string | null;
  readonly lastRotation: string | null;
  readonly generation: number;
  readonly bundles: readonly { readonly trustDomain: string; readonly fingerprints: readonly string[] }[];
  /** The serial a fresh handshake to the first inbound listener serves (null without one or on failure). */
  readonly servedSerial: string | null;
  /** The planned renewal (control-plane identity only). */
  readonly nextRenewal: string | null;
  /** This host's clock minus the control plane's (s, from the last SignSvid answer); null with no control plane yet. */
  readonly controlPlaneClockOffsetSeconds: number | null;
  /** The check made right after the last swap: did a fresh handshake serve the new serial, and how soon. */
  readonly lastServedCheck: ServedCheck | null;
}

export interface ServedCheck {
  readonly serial: string;
  readonly served: string | null;
  readonly match: boolean;
  readonly checkedAt: string;
  /** From installing the SVID to a handshake serving it. */
  readonly afterInstallMs: number;
}

export interface CertsExtras {
  readonly nextRenewalMs?: number | undefined;
  readonly clockOffsetMs?: number | undefined;
  readonly lastServedCheck: ServedCheck | null;
}

export async function certsReport(snapshot: IdentitySnapshot | undefined, probe: ServedTarget | undefined, extras: CertsExtras): Promise<CertsReport> {
  const nextRenewal = extras.nextRenewalMs ? new Date(extras.nextRenewalMs).toISOString() : null;
  const controlPlaneClockOffsetSeconds = extras.clockOffsetMs === undefined ? null : Math.round(extras.clockOffsetMs / 100) / 10;
  if (!snapshot) return { spiffeId: null, serial: null, notBefore: null, notAfter: null, source: null, lastRotation: null, generation: 0, bundles: [], servedSerial: null, nextRenewal, controlPlaneClockOffsetSeconds, lastServedCheck: null };
  return {
    spiffeId: snapshot.id.toString(),
    serial: snapshot.serial,
    notBefore: new Date(snapshot.notBeforeMs).toISOString(),
    notAfter: new Date(snapshot.notAfterMs).toISOString(),
    source: snapshot.source,
    lastRotation: new Date(snapshot.installedAtMs).toISOString(),
    generation: snapshot.generation,
    bundles: snapshot.bundles.bundles().map((b) => ({ trustDomain: b.trustDomain.name, fingerprints: b.authorities.map(fingerprintOf) })),
    servedSerial: probe ? await probeServedSerial(snapshot, probe) : null,
    nextRenewal,
    controlPlaneClockOffsetSeconds,
    lastServedCheck: extras.lastServedCheck,
  };
}
