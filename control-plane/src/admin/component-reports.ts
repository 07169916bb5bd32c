// Where the control plane's components report to: each adapter turns one component's callbacks (issuance,
// identity-call rejections, the config hub, the policy directory) into its metrics, audit lines and log lines,
// so main.ts only wires them.

import type { Clock } from '../../../common/clock.js';
import { describeError } from '../../../common/errors.js';
import type { AuthorizationPolicy } from '../../../common/policy/policy-types.js';
import type { PolicyDirSourceOptions, PolicyFileError } from '../../../shared-io/policy-dir-source.js';
import type { ConfigHubOptions } from '../api/config-service.js';
import { attestationFailureReason } from '../attestation/attested-identity.js';
import type { IssuanceMetrics } from '../issuance/issuer.js';
import type { ControlPlaneLogger } from '../logger.js';
import type { AuditLog } from '../store/store-contract.js';
import type { ControlPlaneMetrics } from './metrics.js';
import { refusedCall } from './refused-call.js';

/** Federated bundles accepted and refused, by trust domain (and code). */
export function federationReports(metrics: ControlPlaneMetrics): { onAccepted: (d: string) => void; onRefused: (d: string, code: string) => void } {
  return { onAccepted: (d) => metrics.federationAccepted.inc({ trust_domain: d }), onRefused: (d, code) => metrics.federationRefusals.inc({ trust_domain: d, code }) };
}

/** JWT-SVID issuance and refusals, by code. */
export function jwtSvidReports(metrics: ControlPlaneMetrics): { onIssued: () => void; onRefused: (code: string) => void } {
  return { onIssued: () => metrics.jwtSvidsIssued.inc(), onRefused: (code) => metrics.jwtSvidRefusals.inc({ code }) };
}

/** `clock` times each issuance (ControlPlaneDeps.preciseClock). */
export function issuanceReports(metrics: ControlPlaneMetrics, clock: Clock): IssuanceMetrics {
  return {
    clock,
    issued: (attestor, seconds) => {
      metrics.issuances.inc({ result: 'issued', attestor });
      metrics.issuanceDuration.observe({ attestor }, seconds);
    },
    refused: (code, attestor) => {
      metrics.issuances.inc({ result: 'refused', attestor });
      metrics.refusals.inc({ code });
      if (code.startsWith('TESSERA_ERR_ATTESTATION_')) metrics.attestationFailures.inc({ reason: attestationFailureReason(code) });
    },
  };
}

/** An Identity call refused before it reached the issuer (too large, malformed). */
export function identityRejections(metrics: ControlPlaneMetrics, audit: AuditLog, clock: Clock): (code: string, caller: string, size: number | undefined) => void {
  return (code, caller, size) => {
    metrics.issuances.inc({ result: 'refused', attestor: 'none' });
    metrics.refusals.inc({ code });
    audit.record(clock.nowMs(), { event: 'svid.refused', result: 'refused', code, caller, size });
  };
}

export function configHubReports(metrics: ControlPlaneMetrics, audit: AuditLog, clock: Clock, log: Pick<ControlPlaneLogger, 'error'>): Pick<ConfigHubOptions, 'onWatchers' | 'onVersion' | 'onSent' | 'onRefused' | 'onPublishError' | 'onBuild'> {
  return {
    onPublishError: (e) => log.error({ err: describeError(e) }, 'publishing a config snapshot failed; watchers keep the previous one'),
    onWatchers: (n) => metrics.configWatchers.set(n),
    onVersion: (v) => metrics.snapshotVersion.set(v),
    onSent: () => metrics.snapshotsSent.inc(),
    onBuild: (examined) => {
      metrics.snapshotBuilds.inc();
      metrics.snapshotExamined.inc(examined);
    },
    onRefused: refusedCall('config.watch_refused', metrics, audit, clock, 'config'),
  };
}

/** A new policy set is counted, logged and handed to `loaded`; refused files are counted and logged. */
export function policyDirReports(dir: string, metrics: ControlPlaneMetrics, log: Pick<ControlPlaneLogger, 'info' | 'warn'>, loaded: () => void): Pick<PolicyDirSourceOptions, 'onPolicies' | 'onErrors'> {
  // Before any set loaded there is no previous one to keep (a directory missing at the first start, say).
  let anyLoaded = false;
  return {
    onPolicies: (p: readonly AuthorizationPolicy[]) => {
      anyLoaded = true;
      metrics.policiesLoaded.set(p.length);
      log.info({ dir, policies: p.map((x) => x.name) }, 'policies loaded');
      loaded();
    },
    onErrors: (errors: readonly PolicyFileError[]) => {
      metrics.policyLoadErrors.inc(errors.length);
      const msg = anyLoaded ? 'policy file refused; the previous set stays' : "policy file refused; no policy is loaded yet: /ready is 503 until the directory loads (proxies keep deciding by what they have)";
      // No line for a fault of a whole file or the directory: a "line":0 would read as a place in the file.
      for (const e of errors) log.warn({ file: e.file, ...(e.line !== undefined ? { line: e.line } : {}), code: e.code, err: e.message }, msg);
    },
  };
}
