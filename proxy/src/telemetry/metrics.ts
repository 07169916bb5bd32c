// The proxy's Prometheus metrics (DESIGN.md section 6) on an injected prom-client Registry, with hot-path
// recording that costs a few map lookups: counters and gauges live in plain cells flushed at scrape time.
import { Gauge, Registry } from 'prom-client';
import type { BuildInfo } from '../../../common/build-info.js';
import { ERROR_CATALOGUE } from '../../../common/errors.js';
import { registerProcessMetrics } from '../../../shared-io/process-metrics.js';
import { HANDSHAKE_REASONS } from './handshake-reason.js';
import { CappedLabels, type Cell, cellCounter, cellHistogram, directionGauge, type HistCell, type Key, type LabelTable, str } from './metric-cells.js';
import { MuxMetrics } from './mux-metrics.js';

export { MAX_SERIES_PER_METRIC } from './metric-cells.js';

/** Distinct `policy` label values kept before further ones are reported as `other`. */
export const MAX_POLICY_LABELS = 200;
/** Distinct `peer` label values (SPIFFE IDs) kept before further ones are reported as `other`. */
export const MAX_PEER_LABELS = 100;

const HANDSHAKE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const REQUEST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const REASONS: ReadonlySet<string> = new Set(HANDSHAKE_REASONS);


function statusLabel(code: Key): string {
  if (typeof code === 'number') return Number.isInteger(code) && code >= 100 && code <= 599 ? String(code) : 'other';
  return String(code).slice(0, 32);
}

export interface ProxyMetricsOptions {
  /** process_* and nodejs_* metrics from prom-client (default true). */
  readonly defaultMetrics?: boolean;
  /** The labels of tessera_build_info (the CLI reads them; "unknown" version without). */
  readonly build?: BuildInfo;
}

export class ProxyMetrics {
  readonly registry: Registry;
  /** The multiplexed transport's sessions, streams and TLS writes/reads. */
  readonly mux: MuxMetrics;
  readonly #handshakes: LabelTable<Cell>;
  readonly #handshakeSeconds: LabelTable<HistCell>;
  readonly #upstreamOpened: LabelTable<Cell>;
  readonly #requests: LabelTable<Cell>;
  readonly #requestSeconds: LabelTable<HistCell>;
  readonly #authz: LabelTable<Cell>;
  readonly #policyLabels = new CappedLabels(MAX_POLICY_LABELS);
  readonly #peerLabels = new CappedLabels(MAX_PEER_LABELS);
  readonly #svidExpiry: Gauge;
  readonly #svidRotations: LabelTable<Cell>;
  readonly #svidRotationFailures: LabelTable<Cell>;
  readonly #bundleUpdates: LabelTable<Cell>;
  readonly #edgeCertReloads: LabelTable<Cell>;
  readonly #policyUpdates: LabelTable<Cell>;
  readonly #servedChecks: LabelTable<Cell>;
  readonly #rejected: LabelTable<Cell>;
  readonly #revokedClosed: LabelTable<Cell>;
  readonly #lapsedDrained: LabelTable<Cell>;
  readonly #plaintext: LabelTable<Cell>;
  readonly #active: LabelTable<Cell>;
  readonly #upgraded: LabelTable<Cell>;
  readonly #jwtCalls: LabelTable<Cell>;
  readonly #workloadCalls: LabelTable<Cell>;
  readonly #discoveryUpdates: LabelTable<Cell>;
  readonly #discoveryConnected: Gauge;
  readonly #discoveryLeftOut: Gauge;

  constructor(registry: Registry, opts: ProxyMetricsOptions = {}) {
    this.registry = registry;
    this.mux = new MuxMetrics(registry);
    registerProcessMetrics(registry, opts.build ?? { version: 'unknown', node: process.versions.node, openssl: process.versions.openssl ?? 'none' }, opts);

    this.#handshakes = cellCounter(
      registry,
      'tessera_tls_handshakes_total',
      'TLS handshakes by direction, result, failure reason (none on success) and session resumption.',
      ['direction', 'result', 'reason', 'resumed'],
      ([direction, ok, reason, resumed]) => [
        String(direction),
        ok ? 'success' : 'failure',
        ok ? 'none' : String(reason),
        resumed ? 'true' : 'false',
      ],
    ).table;
    this.#handshakeSeconds = cellHistogram(registry, 'tessera_tls_handshake_duration_seconds', 'TLS handshake duration from TCP accept/connect to secure (or failure).', ['direction'], HANDSHAKE_BUCKETS, str);
    this.#upstreamOpened = cellCounter(
      registry,
      'tessera_upstream_connections_opened_total',
      'New connections opened to upstreams (a low rate relative to requests means pooling works).',
      ['direction'],
      str,
    ).table;
    this.#requests = cellCounter(
      registry,
      'tessera_requests_total',
      'Proxied requests (HTTP) or connections (TCP) by direction, protocol, status code, listener and peer workload (caller on inbound/edge, destination on outbound).',
      ['direction', 'protocol', 'code', 'listener', 'peer'],
      ([d, l, p, c, peer]) => [String(d), String(p), statusLabel(c!), String(l), this.#peerLabels.label(String(peer))],
    ).table;
    this.#requestSeconds = cellHistogram(
      registry,
      'tessera_request_duration_seconds',
      'Duration of proxied requests (HTTP) or connections (TCP), first byte in to last byte out, by direction, listener and peer workload.',
      ['direction', 'listener', 'peer'],
      REQUEST_BUCKETS,
      ([d, l, peer]) => [String(d), String(l), this.#peerLabels.label(String(peer))],
    );
    this.#authz = cellCounter(
      registry,
      'tessera_authz_decisions_total',
      'Authorization decisions by decision, policy mode and deciding policy (none when no policy decided).',
      ['decision', 'mode', 'policy'],
      ([allowed, mode, policy]) => [allowed ? 'allow' : 'deny', String(mode), this.#policyLabels.label(policy as string)],
    ).table;
    this.#svidExpiry = new Gauge({
      name: 'tessera_svid_expiry_timestamp_seconds',
      help: 'NotAfter of the SVID currently served, in seconds since the epoch.',
      registers: [registry],
    });
    // Known results start at 0 so rate() and absent() work before the first event.
    const results = (name: string, help: string, known: readonly string[]): LabelTable<Cell> => {
      const { table, counter } = cellCounter(registry, name, help, ['result'], str);
      for (const r of known) counter.inc({ result: r }, 0);
      return table;
    };
    this.#svidRotations = results('tessera_svid_rotations_total', 'SVID rotations by result.', ['success', 'failure', 'refused']);
    this.#svidRotationFailures = cellCounter(registry, 'tessera_svid_rotation_failures_total', 'SVID rotations that failed or were refused, by stable error code (other: none).', ['code'], str).table;
    this.#bundleUpdates = results('tessera_trust_bundle_updates_total', 'Trust bundle updates by result.', ['success', 'refused']);
    this.#edgeCertReloads = cellCounter(registry, 'tessera_edge_certificate_reloads_total', 'Edge certificate (and client CA) file reloads by listener and result: success, refused (the served set kept), last-good (started on the last good set).', ['listener', 'result'], str).table;
    this.#policyUpdates = results('tessera_policy_updates_total', 'Authorization policy snapshot updates by result.', ['success', 'refused']);
    this.#discoveryUpdates = results('tessera_discovery_updates_total', 'Discovery/Watch updates by result: applied, or refused (malformed or older; the last endpoints stay).', ['applied', 'refused']);
    this.#discoveryConnected = new Gauge({
      name: 'tessera_discovery_connected',
      help: '1 while the Discovery/Watch stream is open and has delivered its first update, else 0 (routing goes on with the last endpoints).',
      registers: [registry],
    });
    this.#discoveryLeftOut = new Gauge({
      name: 'tessera_discovery_services_left_out',
      help: 'Services with endpoints the last Discovery/Watch view carried that the proxy does not hold: over its 5,000 cap (TESSERA_ERR_DISCOVERY_OVER_CAP); 0 normally.',
      registers: [registry],
    });
    this.#discoveryLeftOut.set(0);
    this.#servedChecks = results('tessera_svid_served_checks_total', 'After each identity swap, a handshake to the own inbound listener: does it serve the new serial?', ['match', 'mismatch']);
    this.#revokedClosed = cellCounter(registry, 'tessera_connections_revoked_total', 'Open connections closed because the peer\'s SPIFFE ID or SVID serial was banned (tessera revoke), by direction.', ['direction'], str).table;
    this.#lapsedDrained = cellCounter(registry, 'tessera_connections_drained_total', 'Open connections drained (no new request) because the peer\'s SVID expired or its CA left the bundle, by direction and reason.', ['direction', 'reason'], str).table;
    this.#jwtCalls = cellCounter(
      registry,
      'tessera_workload_api_jwt_calls_total',
      'Workload API JWT-SVID calls by call (fetch, validate), result (ok, refused, failed) and refusal reason (none when ok).',
      ['call', 'result', 'reason'],
      str,
    ).table;
    this.#workloadCalls = cellCounter(
      registry,
      'tessera_workload_api_calls_total',
      'Workload API calls by method and outcome: ok, invalid_argument (no security header), malformed (a request that does not decode or cannot be read), too_large (over the request bound), unavailable (no SVID yet), unimplemented (JWT calls without a control plane).',
      ['method', 'outcome'],
      str,
    ).table;
    this.#plaintext = cellCounter(
      registry,
      'tessera_plaintext_connections_total',
      'Plaintext (not TLS) connections accepted by a permissive inbound listener, by listener: callers still to migrate to mTLS.',
      ['listener'],
      str,
    ).table;
    this.#rejected = cellCounter(
      registry,
      'tessera_requests_rejected_total',
      'Requests or connections refused before proxying (limits, timeouts, malformed input) by reason.',
      ['direction', 'reason'],
      str,
    ).table;
    this.#active = directionGauge(registry, 'tessera_connections_active', 'Client connections currently open, by direction.');
    this.#upgraded = directionGauge(registry, 'tessera_upgraded_connections', 'Upgraded (WebSocket and other 101 Switching Protocols) connections currently open, by direction.');
  }

  /** An HTTP/1.1 exchange switched protocols (WebSocket, after the app's 101): +1; such a connection ended: -1. */
  upgradedConnection(direction: string, delta: 1 | -1): void {
    this.#upgraded.get1(direction).n += delta;
  }

  handshake(direction: string, ok: boolean, reason: string, resumed: boolean, seconds?: number): void {
    // Unknown reasons fold into 'other' before the lookup, so no caller string can grow the table.
    this.#handshakes.get4(direction, ok, ok ? 'none' : REASONS.has(reason) ? reason : 'other', resumed).n++;
    if (seconds !== undefined && seconds >= 0 && seconds < Infinity) this.#handshakeSeconds.get1(direction).observe(seconds);
  }

  upstreamConnectionOpened(direction: string): void {
    this.#upstreamOpened.get1(direction).n++;
  }

  /**
   * One finished request (HTTP) or connection (TCP) on listener `listener`. `peer`: the caller's SPIFFE ID on
   * inbound and edge, the destination's on outbound; '' when there is none (an edge client without one).
   */
  request(direction: string, protocol: string, code: number | string, seconds: number, listener: string, peer: string): void {
    this.#requests.get5(direction, listener, protocol, code, peer).n++;
    if (seconds >= 0 && seconds < Infinity) this.#requestSeconds.get3(direction, listener, peer).observe(seconds);
  }

  authzDecision(allowed: boolean, mode: string, policy: string | null): void {
    this.#authz.get3(allowed, mode, policy ?? '').n++;
  }

  svidExpiry(notAfterMs: number): void {
    if (Number.isFinite(notAfterMs)) this.#svidExpiry.set(notAfterMs / 1000);
  }

  /** `code`: the failure's stable code when it has one; anything else (and any string not in the catalogue) is `other`. */
  svidRotation(result: 'success' | 'failure' | 'refused', code?: string): void {
    this.#svidRotations.get1(result).n++;
    if (result !== 'success') this.#svidRotationFailures.get1(code !== undefined && Object.hasOwn(ERROR_CATALOGUE, code) ? code : 'other').n++;
  }

  trustBundleUpdate(result: 'success' | 'refused'): void {
    this.#bundleUpdates.get1(result).n++;
  }

  edgeCertificateReload(listener: string, result: 'success' | 'refused' | 'last-good'): void {
    this.#edgeCertReloads.get2(listener, result).n++;
  }

  servedCheck(result: 'match' | 'mismatch'): void {
    this.#servedChecks.get1(result).n++;
  }

  policyUpdate(result: 'success' | 'refused'): void {
    this.#policyUpdates.get1(result).n++;
  }

  discoveryUpdate(result: 'applied' | 'refused'): void {
    this.#discoveryUpdates.get1(result).n++;
  }

  discoveryConnected(connected: boolean): void {
    this.#discoveryConnected.set(connected ? 1 : 0);
  }

  discoveryLeftOut(services: number): void {
    this.#discoveryLeftOut.set(services);
  }

  connectionOpened(direction: string): void {
    this.#active.get1(direction).n++;
  }

  connectionClosed(direction: string): void {
    this.#active.get1(direction).n--;
  }

  /** Open connections closed because a new deny-list bans their peer. */
  connectionsRevoked(direction: string, count: number): void {
    this.#revokedClosed.get1(direction).n += count;
  }

  /** Open connections drained because their peer no longer stands (peer-standing.ts). */
  connectionsDrained(direction: string, reason: string, count: number): void {
    this.#lapsedDrained.get2(direction, reason).n += count;
  }

  /** A plaintext connection on a permissive inbound listener (a caller that is not in the mesh yet). */
  plaintextConnection(listener: string): void {
    this.#plaintext.get1(listener).n++;
  }

  rejected(direction: string, reason: string): void {
    this.#rejected.get2(direction, reason).n++;
  }

  /** A Workload API call opened or refused (every method; the JWT calls' results are in jwtCall too). */
  workloadCall(method: string, outcome: string): void {
    this.#workloadCalls.get2(method, outcome).n++;
  }

  /** A Workload API JWT-SVID call answered: ok, refused (bad input, with its reason) or failed (no token to be had). */
  jwtCall(call: 'fetch' | 'validate', result: 'ok' | 'refused' | 'failed', reason: string): void {
    this.#jwtCalls.get3(call, result, reason).n++;
  }

}

/** A fresh registry for one proxy (never prom-client's global one). */
export function createProxyRegistry(): Registry {
  return new Registry();
}
