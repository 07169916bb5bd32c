// The control plane's Prometheus metrics (prefix tessera_), registered on a registry main.ts creates and
// injects; label values come from fixed sets (results, error codes, attestation reasons, authority ids).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { BuildInfo } from '../../../common/build-info.js';
import { registerProcessMetrics } from '../../../shared-io/process-metrics.js';

export interface ControlPlaneMetrics {
  readonly issuances: Counter<'result' | 'attestor'>;
  readonly refusals: Counter<'code'>;
  readonly attestationFailures: Counter<'reason'>;
  readonly issuanceDuration: Histogram<'attestor'>;
  readonly caExpiry: Gauge<'authority' | 'cert' | 'state'>;
  readonly caAuthorities: Gauge<'state'>;
  readonly caRootOffline: Gauge<'authority'>;
  readonly caIntermediateInstalls: Counter<'result' | 'reason'>;
  readonly configWatchers: Gauge;
  readonly snapshotVersion: Gauge;
  readonly snapshotsSent: Counter;
  readonly snapshotBuilds: Counter;
  readonly snapshotExamined: Counter;
  readonly policyLoadErrors: Counter;
  readonly configFileChanges: Counter<'result'>;
  readonly policiesLoaded: Gauge;
  readonly breakGlassActive: Gauge;
  readonly tlsFailures: Counter<'reason'>;
  readonly grpcRejected: Counter<'reason'>;
  readonly bundleEndpointRefused: Counter<'reason'>;
  readonly grpcConnections: Gauge;
  readonly jwtSvidsIssued: Counter;
  readonly jwtSvidRefusals: Counter<'code'>;
  readonly federationAccepted: Counter<'trust_domain'>;
  readonly federationRefusals: Counter<'trust_domain' | 'code'>;
  readonly registryEndpoints: Gauge<'service' | 'source'>;
  readonly discoveryWatchers: Gauge;
  readonly registrationsRefused: Counter<'code'>;
  readonly watchRefusals: Counter<'service' | 'code'>;
  readonly discoverySourceErrors: Counter<'source'>;
  readonly discoveryEndpointsSkipped: Gauge<'reason'>;
  readonly auditSuppressed: Counter<'event'>;
  readonly dashboardBuilds: Counter;
  readonly dashboardBuildSlices: Counter;
}

export function createMetrics(registry: Registry, build: BuildInfo): ControlPlaneMetrics {
  // The same process_*/nodejs_* names and tessera_build_info as every proxy.
  registerProcessMetrics(registry, build);
  const registers = [registry];
  return {
    issuances: new Counter({ name: 'tessera_issuances_total', help: 'SVID requests decided, by result (issued|refused) and attestor', labelNames: ['result', 'attestor'], registers }),
    refusals: new Counter({ name: 'tessera_issuance_refusals_total', help: 'Refused SVID requests by stable error code', labelNames: ['code'], registers }),
    attestationFailures: new Counter({ name: 'tessera_attestation_failures_total', help: 'Attestation failures by reason', labelNames: ['reason'], registers }),
    issuanceDuration: new Histogram({
      name: 'tessera_issuance_duration_seconds',
      help: 'Time to attest and sign one SVID',
      labelNames: ['attestor'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers,
    }),
    caExpiry: new Gauge({ name: 'tessera_ca_expiry_timestamp_seconds', help: 'NotAfter of each authority root, and where the chain of its current intermediate ends (the earlier of its NotAfter and its root NotAfter)', labelNames: ['authority', 'cert', 'state'], registers }),
    caAuthorities: new Gauge({ name: 'tessera_ca_authorities', help: 'Authorities by state', labelNames: ['state'], registers }),
    caRootOffline: new Gauge({ name: 'tessera_ca_root_offline', help: 'Per authority: 1 when its root is offline (its intermediates are installed by the operator, never rotated here), 0 when managed', labelNames: ['authority'], registers }),
    // reason: "none" when installed, else a fixed set (offline-intermediate.ts and the lifecycle codes).
    caIntermediateInstalls: new Counter({ name: 'tessera_ca_intermediate_installs_total', help: 'Intermediates signed by an offline root offered with `tessera ca install-intermediate`, by result (installed|refused) and reason', labelNames: ['result', 'reason'], registers }),
    configWatchers: new Gauge({ name: 'tessera_config_watchers', help: 'Connected Config/Watch streams (proxies)', registers }),
    snapshotVersion: new Gauge({ name: 'tessera_config_snapshot_version', help: 'Current config snapshot version', registers }),
    snapshotsSent: new Counter({ name: 'tessera_config_snapshots_sent_total', help: 'Config snapshots sent to proxies', registers }),
    snapshotBuilds: new Counter({ name: 'tessera_config_snapshot_builds_total', help: 'Config snapshots built, one per SPIFFE ID with open Watch streams and version', registers }),
    snapshotExamined: new Counter({ name: 'tessera_config_snapshot_entries_examined_total', help: 'Policies and break-glass grants the snapshot builds looked at (those whose selector can match the ID)', registers }),
    policyLoadErrors: new Counter({ name: 'tessera_policy_load_errors_total', help: 'Policy files that failed validation (the last good set stayed)', registers }),
    // result: the fixed set of lifecycle/config-file-watch.ts (changed|invalid|gone|restored).
    configFileChanges: new Counter({ name: 'tessera_cp_config_file_changes_total', help: 'Edits of the control plane config file seen while running (the running config stays), by what they mean: changed (valid, a restart applies it), invalid (a restart would fail), gone, restored', labelNames: ['result'], registers }),
    policiesLoaded: new Gauge({ name: 'tessera_policies_loaded', help: 'Authorization policies in the set in force', registers }),
    breakGlassActive: new Gauge({ name: 'tessera_break_glass_grants_active', help: 'Unexpired break-glass grants', registers }),
    tlsFailures: new Counter({ name: 'tessera_grpc_tls_failures_total', help: 'Connections to the gRPC port closed before gRPC (garbage, plaintext, timeout, no call in time, closed at the connection cap)', labelNames: ['reason'], registers }),
    // reason: http2_flood or http2_protocol_error (shared-io/h2-session-error.ts), the proxies' names for the same cuts.
    grpcRejected: new Counter({ name: 'tessera_grpc_requests_rejected_total', help: 'HTTP/2 connections to the gRPC port cut for a flood of frames (WINDOW_UPDATE, PING, SETTINGS, ...) or closed for a protocol error, and streams reset for a request message not whole within limits.headersTimeout or past the bounds on unfinished messages, by reason', labelNames: ['reason'], registers }),
    bundleEndpointRefused: new Counter({ name: 'tessera_bundle_endpoint_refused_total', help: 'Connections to the SPIFFE bundle endpoint refused before HTTP (handshake timeout or failure, over limits.maxConnections)', labelNames: ['reason'], registers }),
    grpcConnections: new Gauge({ name: 'tessera_grpc_connections', help: 'Open TLS connections on the gRPC port', registers }),
    jwtSvidsIssued: new Counter({ name: 'tessera_jwt_svids_issued_total', help: 'JWT-SVIDs signed (MintJwtSvid)', registers }),
    jwtSvidRefusals: new Counter({ name: 'tessera_jwt_svid_refusals_total', help: 'Refused MintJwtSvid calls by stable error code', labelNames: ['code'], registers }),
    // trust_domain values come from the config file's federation.trustDomains (a fixed set).
    federationAccepted: new Counter({ name: 'tessera_federation_bundle_fetches_total', help: 'Federated bundles fetched and accepted, by trust domain', labelNames: ['trust_domain'], registers }),
    federationRefusals: new Counter({ name: 'tessera_federation_bundle_refusals_total', help: 'Federated bundle fetches failed or refused (last good kept), by trust domain and stable error code', labelNames: ['trust_domain', 'code'], registers }),
    // service: the first 200 service names seen, then "other" (component-reports.ts keeps the cap).
    registryEndpoints: new Gauge({ name: 'tessera_cp_registry_endpoints', help: 'Endpoints in the service registry, by service and source (self|kubernetes|static)', labelNames: ['service', 'source'], registers }),
    discoveryWatchers: new Gauge({ name: 'tessera_cp_discovery_watchers', help: 'Connected Discovery/Watch streams', registers }),
    // code: the stable codes a stream can be refused with (errors.ts), a fixed set.
    watchRefusals: new Counter({ name: 'tessera_watch_refusals_total', help: 'Config/Watch and Discovery/Watch streams refused before they started, by service (config|discovery) and stable error code', labelNames: ['service', 'code'], registers }),
    registrationsRefused: new Counter({ name: 'tessera_cp_registrations_refused_total', help: 'Self-registrations refused, by stable error code', labelNames: ['code'], registers }),
    auditSuppressed: new Counter({ name: 'tessera_cp_audit_rows_suppressed_total', help: 'Refusal audit rows not written because their subject (or all callers without a proven ID) was over its audit budget, by event', labelNames: ['event'], registers }),
    dashboardBuilds: new Counter({ name: 'tessera_cp_dashboard_builds_total', help: 'Fleet dashboard views built that read the inventory', registers }),
    dashboardBuildSlices: new Counter({ name: 'tessera_cp_dashboard_build_slices_total', help: 'Turns of the event loop those builds read and folded the live SVIDs in', registers }),
    discoverySourceErrors: new Counter({ name: 'tessera_cp_discovery_source_errors_total', help: 'Endpoint source reads that failed (its last view kept), by source', labelNames: ['source'], registers }),
    // A gauge: each Kubernetes view is computed whole, so what it leaves out is a state, not a stream of events.
    discoveryEndpointsSkipped: new Gauge({ name: 'tessera_cp_discovery_endpoints_skipped', help: 'Endpoints of Kubernetes EndpointSlices left out of the current view, by reason', labelNames: ['reason'], registers }),
  };
}
