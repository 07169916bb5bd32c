// One seam for where the proxy's identity comes from (files, or the control plane with its Config/Watch stream):
// main.ts opens one (open-identity-source.ts), waits until it is ready, asks why it is not ready and when it renews, and stops it.
import type { Logger } from 'pino';
import type { Clock } from '../../../common/clock.js';
import type { Timers } from '../../../shared-io/timers.js';
import type { ProxyReportMsg, ReportAckMsg } from '../../../common/contract/config-v1.js';
import type { PolicyHolder } from '../authz/policy-holder.js';
import type { ControlPlaneMetrics } from '../telemetry/control-plane-metrics.js';
import type { ProxyMetrics } from '../telemetry/metrics.js';
import type { DenyListHolder } from '../tls/deny-list-holder.js';
import type { MintedJwtSvid } from './control-plane-client.js';
import type { IdentityStore } from './identity-store.js';
import type { JwtBundleHolder } from './jwt-bundle-holder.js';
import type { ControlPlaneClient } from './control-plane-client.js';
import type { ControlPlaneEndpoints } from './control-plane-endpoints.js';
import type { IssuedSvid, OwnBan } from './control-plane-svid-source.js';

export interface IdentitySource {
  /** Resolves once the first identity (and, from a source that delivers them, the first policies) is in place. */
  ready(): Promise<void>;
  /** Whether policies (and bans) arrive with the identity; otherwise a local directory or the default decides. */
  readonly deliversPolicies: boolean;
  /** Why the identity cannot serve now; undefined when it can. */
  notReadyReason(): string | undefined;
  /** The planned renewal (wall clock), for a source that renews by itself. */
  readonly nextRenewalMs: number | undefined;
  /** This host's clock minus the control plane's, from the last SignSvid answer; undefined with no control plane. */
  readonly clockOffsetMs: number | undefined;
  /** Signs JWT-SVIDs of the current identity (only a control-plane source can; absent otherwise). */
  readonly mintJwtSvid?: (audience: readonly string[]) => Promise<MintedJwtSvid>;
  /**
   * The ban the control plane refused the current SVID for (its ID or its serial), until another SVID is installed;
   * the Workload API's JWT calls follow it as the X.509 side's readiness does (only a control-plane source).
   */
  readonly ownBan?: () => OwnBan | undefined;
  /** The control plane's Discovery calls and the SVID to authenticate them (only a control-plane source). */
  readonly discovery?: {
    readonly client: Pick<ControlPlaneClient, 'watchDiscovery' | 'register'>;
    readonly currentSvid: () => IssuedSvid | undefined;
    /** The replica picker the client uses: the discovery streams reconnect after its backoff. */
    readonly endpoints: Pick<ControlPlaneEndpoints, 'retryDelayMs'>;
  };
  /** Sends a fleet report to the control plane over mTLS with the current SVID (only a control-plane source). */
  readonly report?: (msg: ProxyReportMsg) => Promise<ReportAckMsg>;
  stop(): void;
}

/** What an identity source installs into and reports to. */
export interface IdentitySourceDeps {
  readonly store: IdentityStore;
  readonly policies: PolicyHolder;
  readonly denyList: DenyListHolder;
  /** JWT bundles from the control plane (a files source leaves it empty). */
  readonly jwtBundles: JwtBundleHolder;
  readonly metrics: ProxyMetrics;
  /** Which control-plane address is in use, failovers and failbacks (a control-plane source only). */
  readonly controlPlaneMetrics?: ControlPlaneMetrics;
  readonly log: Logger;
  readonly clock: Clock;
  /** The clock of gRPC deadlines (a control-plane source): Date.now in production, as grpc-js reads it. */
  readonly deadlineClock: Clock;
  /** Retries, renewals, probes and reconnects are scheduled here (the process's timers, unref'd). */
  readonly timers: Timers;
}
