// ProxyMetrics: names, labels and values as scraped from the injected registry, label normalisation and the
// cardinality bounds.
import { Histogram, Registry } from 'prom-client';
import { describe, expect, test } from 'vitest';
import { MAX_PEER_LABELS, MAX_POLICY_LABELS, MAX_SERIES_PER_METRIC, ProxyMetrics, createProxyRegistry } from '../../../../proxy/src/telemetry/metrics.js';

type Sample = { labels: Record<string, string | number>; value: number; metricName?: string };

async function samples(registry: Registry, name: string): Promise<Sample[]> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  return (await metric.get()).values as Sample[];
}

async function value(registry: Registry, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const match = (await samples(registry, name)).filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v) && Object.keys(s.labels).length === Object.keys(labels).length);
  if (match.length > 1) throw new Error(`ambiguous ${name} ${JSON.stringify(labels)}`);
  return match[0]?.value;
}

function fresh(): { m: ProxyMetrics; r: Registry } {
  const r = createProxyRegistry();
  return { m: new ProxyMetrics(r, { defaultMetrics: false }), r };
}

const NAMES = [
  'tessera_authz_decisions_total',
  'tessera_build_info',
  'tessera_connections_active',
  'tessera_connections_drained_total',
  'tessera_connections_revoked_total',
  'tessera_discovery_connected',
  'tessera_discovery_services_left_out',
  'tessera_discovery_updates_total',
  'tessera_edge_certificate_reloads_total',
  'tessera_mux_fallbacks_total',
  'tessera_mux_sessions_active',
  'tessera_mux_sessions_ended_total',
  'tessera_mux_streams_opened_total',
  'tessera_mux_tls_reads_total',
  'tessera_mux_tls_writes_total',
  'tessera_plaintext_connections_total',
  'tessera_policy_updates_total',
  'tessera_request_duration_seconds',
  'tessera_requests_rejected_total',
  'tessera_requests_total',
  'tessera_svid_expiry_timestamp_seconds',
  'tessera_svid_rotation_failures_total',
  'tessera_svid_rotations_total',
  'tessera_svid_served_checks_total',
  'tessera_tls_handshake_duration_seconds',
  'tessera_tls_handshakes_total',
  'tessera_trust_bundle_updates_total',
  'tessera_upgraded_connections',
  'tessera_upstream_connections_opened_total',
  'tessera_workload_api_calls_total',
  'tessera_workload_api_jwt_calls_total',
];

describe('ProxyMetrics', () => {
  test('registers exactly the documented metrics on the injected registry, nothing global', async () => {
    const { r } = fresh();
    expect((await r.getMetricsAsJSON()).map((m) => m.name).sort()).toEqual(NAMES);
    // Two instances on two registries coexist (a global registry would reject the duplicate names).
    const r2 = createProxyRegistry();
    new ProxyMetrics(r2);
    expect(r2.getSingleMetric('process_cpu_user_seconds_total')).toBeDefined();
    expect(r.getSingleMetric('process_cpu_user_seconds_total')).toBeUndefined();
  });

  test('SVID rotations that fail or are refused are counted by their stable code; anything else is other', async () => {
    const { m, r } = fresh();
    m.svidRotation('success');
    m.svidRotation('refused', 'TESSERA_ERR_IDENTITY_KEY_FILE_PERMISSIONS');
    m.svidRotation('refused', 'TESSERA_ERR_IDENTITY_KEY_FILE_PERMISSIONS');
    m.svidRotation('failure', 'TESSERA_ERR_IDENTITY_SIGN_FAILED');
    m.svidRotation('failure');
    m.svidRotation('failure', 'constructor');
    m.svidRotation('refused', 'made up by a peer');
    expect(await value(r, 'tessera_svid_rotation_failures_total', { code: 'TESSERA_ERR_IDENTITY_KEY_FILE_PERMISSIONS' })).toBe(2);
    expect(await value(r, 'tessera_svid_rotation_failures_total', { code: 'TESSERA_ERR_IDENTITY_SIGN_FAILED' })).toBe(1);
    expect(await value(r, 'tessera_svid_rotation_failures_total', { code: 'other' })).toBe(3);
    expect((await samples(r, 'tessera_svid_rotation_failures_total')).length).toBe(3);
  });

  test('upgraded connections open now, by direction', async () => {
    const { m, r } = fresh();
    m.upgradedConnection('inbound', 1);
    m.upgradedConnection('inbound', 1);
    m.upgradedConnection('outbound', 1);
    m.upgradedConnection('inbound', -1);
    expect(await value(r, 'tessera_upgraded_connections', { direction: 'inbound' })).toBe(1);
    expect(await value(r, 'tessera_upgraded_connections', { direction: 'outbound' })).toBe(1);
  });

  test('plaintext connections of permissive inbound listeners, by listener', async () => {
    const { m, r } = fresh();
    m.plaintextConnection('app');
    m.plaintextConnection('app');
    m.plaintextConnection('db');
    expect(await value(r, 'tessera_plaintext_connections_total', { listener: 'app' })).toBe(2);
    expect(await value(r, 'tessera_plaintext_connections_total', { listener: 'db' })).toBe(1);
  });

  test('handshakes: result, reason (none on success, unknown → other), resumed, duration', async () => {
    const { m, r } = fresh();
    m.handshake('inbound', true, 'ignored', false, 0.004);
    m.handshake('inbound', true, '', true, 0.001);
    m.handshake('inbound', false, 'unknown_ca', false, 0.002);
    m.handshake('inbound', false, 'unknown_ca', false);
    m.handshake('outbound', false, 'made up reason', false);
    const name = 'tessera_tls_handshakes_total';
    expect(await value(r, name, { direction: 'inbound', result: 'success', reason: 'none', resumed: 'false' })).toBe(1);
    expect(await value(r, name, { direction: 'inbound', result: 'success', reason: 'none', resumed: 'true' })).toBe(1);
    expect(await value(r, name, { direction: 'inbound', result: 'failure', reason: 'unknown_ca', resumed: 'false' })).toBe(2);
    expect(await value(r, name, { direction: 'outbound', result: 'failure', reason: 'other', resumed: 'false' })).toBe(1);
    const hist = await samples(r, 'tessera_tls_handshake_duration_seconds');
    expect(hist.find((s) => s.metricName === 'tessera_tls_handshake_duration_seconds_count' && s.labels.direction === 'inbound')?.value).toBe(3);
    const sum = hist.find((s) => s.metricName === 'tessera_tls_handshake_duration_seconds_sum')!.value;
    expect(sum).toBeCloseTo(0.007, 9);
    const text = await r.metrics();
    expect(text).toContain('tessera_tls_handshakes_total{direction="inbound",result="failure",reason="unknown_ca",resumed="false"} 2');
  });

  test('requests: numeric and string codes share a series, odd codes fold, bad durations are skipped', async () => {
    const { m, r } = fresh();
    const web = 'spiffe://td/web';
    m.request('inbound', 'http1', 200, 0.01, 'app', web);
    m.request('inbound', 'http1', '200', 0.02, 'app', web);
    m.request('inbound', 'http1', 999, 0.01, 'app', web);
    m.request('inbound', 'tcp', 'closed', Number.NaN, 'db', web);
    m.request('edge', 'http2', 403, -1, 'public', '');
    const name = 'tessera_requests_total';
    expect(await value(r, name, { direction: 'inbound', protocol: 'http1', code: '200', listener: 'app', peer: web })).toBe(2);
    expect(await value(r, name, { direction: 'inbound', protocol: 'http1', code: 'other', listener: 'app', peer: web })).toBe(1);
    expect(await value(r, name, { direction: 'inbound', protocol: 'tcp', code: 'closed', listener: 'db', peer: web })).toBe(1);
    expect(await value(r, name, { direction: 'edge', protocol: 'http2', code: '403', listener: 'public', peer: 'none' })).toBe(1);
    const hist = await samples(r, 'tessera_request_duration_seconds');
    const count = (d: string) => hist.find((s) => s.metricName === 'tessera_request_duration_seconds_count' && s.labels.direction === d)?.value;
    expect(count('inbound')).toBe(3);
    expect(count('edge')).toBeUndefined();
    expect(hist.find((s) => s.metricName === 'tessera_request_duration_seconds_count' && s.labels.listener === 'app')?.labels.peer).toBe(web);
  });

  test('request durations: the exposition is what prom-client\'s own histogram writes for the same observations', async () => {
    const { m, r } = fresh();
    const ref = new Registry();
    const hist = new Histogram({
      name: 'tessera_request_duration_seconds',
      help: (r.getSingleMetric('tessera_request_duration_seconds') as unknown as { help: string }).help,
      labelNames: ['direction', 'listener', 'peer'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [ref],
    });
    // On bounds, between them, above the last one, in two series, scraped twice (counts carry on after a scrape).
    const seen: [string, string, number][] = [];
    const observe = (dir: string, peer: string, v: number) => {
      m.request(dir, 'http', 200, v, 'app', peer);
      seen.push([dir, peer, v]);
    };
    for (const v of [0.0005, 0.0007, 0.001, 0.003, 0.5, 0.75, 30, 31, 120]) observe('inbound', 'spiffe://td/web', v);
    observe('edge', '', 0.02);
    const scrape = async (reg: Registry) => reg.getSingleMetricAsString('tessera_request_duration_seconds');
    const expected = async () => {
      hist.reset();
      for (const [dir, peer, v] of seen) hist.observe({ direction: dir, listener: 'app', peer: peer || 'none' }, v);
      return scrape(ref);
    };
    expect(await scrape(r)).toBe(await expected());
    observe('inbound', 'spiffe://td/web', 0.004);
    observe('edge', '', 7);
    expect(await scrape(r)).toBe(await expected());
    expect(await scrape(r)).toContain('tessera_request_duration_seconds_bucket{le="30",direction="inbound",listener="app",peer="spiffe://td/web"} 8');
  });

  test('requests: the peer label keeps the first 100 SPIFFE IDs, later peers count as other', async () => {
    const { m, r } = fresh();
    for (let i = 0; i < MAX_PEER_LABELS + 30; i++) m.request('inbound', 'http', 200, 0.001, 'app', `spiffe://td/caller-${i}`);
    m.request('inbound', 'http', 200, 0.001, 'app', 'spiffe://td/caller-0');
    const all = await samples(r, 'tessera_requests_total');
    expect(new Set(all.map((s) => s.labels.peer)).size).toBe(MAX_PEER_LABELS + 1);
    expect(await value(r, 'tessera_requests_total', { direction: 'inbound', protocol: 'http', code: '200', listener: 'app', peer: 'spiffe://td/caller-0' })).toBe(2);
    expect(await value(r, 'tessera_requests_total', { direction: 'inbound', protocol: 'http', code: '200', listener: 'app', peer: 'other' })).toBe(30);
    const hist = (await samples(r, 'tessera_request_duration_seconds')).filter((s) => s.metricName === 'tessera_request_duration_seconds_count');
    expect(new Set(hist.map((s) => s.labels.peer)).size).toBe(MAX_PEER_LABELS + 1);
    expect(hist.reduce((a, s) => a + s.value, 0)).toBe(MAX_PEER_LABELS + 31);
    // One series for all of them: a scrape that holds a series twice is invalid (Prometheus drops the repeats).
    expect(hist.filter((s) => s.labels.peer === 'other').map((s) => s.value)).toEqual([30]);
    const lines = (await r.metrics()).split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    const series = lines.map((l) => l.slice(0, l.lastIndexOf(' ')));
    expect(series.filter((x, i) => series.indexOf(x) !== i)).toEqual([]);
  });

  test('tessera_build_info: 1 with the version, Node and OpenSSL labels', async () => {
    const r = createProxyRegistry();
    new ProxyMetrics(r, { defaultMetrics: false, build: { version: '1.2.3', node: '24.20.0', openssl: '3.5.7' } });
    expect(await r.metrics()).toContain('tessera_build_info{version="1.2.3",node="24.20.0",openssl="3.5.7"} 1');
  });

  test('counter values stay cumulative across scrapes', async () => {
    const { m, r } = fresh();
    m.upstreamConnectionOpened('outbound');
    expect(await value(r, 'tessera_upstream_connections_opened_total', { direction: 'outbound' })).toBe(1);
    m.upstreamConnectionOpened('outbound');
    m.upstreamConnectionOpened('outbound');
    expect(await value(r, 'tessera_upstream_connections_opened_total', { direction: 'outbound' })).toBe(3);
    expect(await value(r, 'tessera_upstream_connections_opened_total', { direction: 'outbound' })).toBe(3);
  });

  test('authz decisions: null policy is none, policy values are capped', async () => {
    const { m, r } = fresh();
    m.authzDecision(true, 'enforce', 'api-allow-web');
    m.authzDecision(false, 'enforce', null);
    m.authzDecision(false, 'audit', '');
    const name = 'tessera_authz_decisions_total';
    expect(await value(r, name, { decision: 'allow', mode: 'enforce', policy: 'api-allow-web' })).toBe(1);
    expect(await value(r, name, { decision: 'deny', mode: 'enforce', policy: 'none' })).toBe(1);
    expect(await value(r, name, { decision: 'deny', mode: 'audit', policy: 'none' })).toBe(1);
    for (let i = 0; i < MAX_POLICY_LABELS + 50; i++) m.authzDecision(false, 'enforce', `p-${i}`);
    const all = await samples(r, name);
    const policies = new Set(all.map((s) => s.labels.policy));
    // The 200 cap counts api-allow-web too; none is not a policy.
    expect(policies.size).toBe(MAX_POLICY_LABELS + 2);
    expect(await value(r, name, { decision: 'deny', mode: 'enforce', policy: 'other' })).toBe(51);
    expect(all.reduce((a, s) => a + s.value, 0)).toBe(3 + MAX_POLICY_LABELS + 50);
  });

  test('active connections, rejections, SVID expiry', async () => {
    const { m, r } = fresh();
    m.connectionOpened('inbound');
    m.connectionOpened('inbound');
    m.connectionOpened('edge');
    m.connectionClosed('inbound');
    expect(await value(r, 'tessera_connections_active', { direction: 'inbound' })).toBe(1);
    expect(await value(r, 'tessera_connections_active', { direction: 'edge' })).toBe(1);
    m.connectionClosed('edge');
    expect(await value(r, 'tessera_connections_active', { direction: 'edge' })).toBe(0);
    m.rejected('inbound', 'header_too_large');
    m.rejected('inbound', 'header_too_large');
    m.rejected('edge', 'too_many_connections');
    expect(await value(r, 'tessera_requests_rejected_total', { direction: 'inbound', reason: 'header_too_large' })).toBe(2);
    expect(await value(r, 'tessera_requests_rejected_total', { direction: 'edge', reason: 'too_many_connections' })).toBe(1);
    m.svidExpiry(1_767_225_600_500);
    expect(await value(r, 'tessera_svid_expiry_timestamp_seconds', {})).toBe(1_767_225_600.5);
  });

  test('Workload API JWT calls by call, result and reason', async () => {
    const { m, r } = fresh();
    m.jwtCall('validate', 'refused', 'wrong_audience');
    m.jwtCall('validate', 'refused', 'wrong_audience');
    m.jwtCall('fetch', 'ok', 'none');
    const text = await r.metrics();
    expect(text).toContain('tessera_workload_api_jwt_calls_total{call="validate",result="refused",reason="wrong_audience"} 2');
    expect(text).toContain('tessera_workload_api_jwt_calls_total{call="fetch",result="ok",reason="none"} 1');
  });

  test('Workload API calls by method and outcome', async () => {
    const { m, r } = fresh();
    m.workloadCall('FetchX509SVID', 'ok');
    m.workloadCall('FetchX509SVID', 'invalid_argument');
    m.workloadCall('FetchX509SVID', 'invalid_argument');
    const text = await r.metrics();
    expect(text).toContain('tessera_workload_api_calls_total{method="FetchX509SVID",outcome="ok"} 1');
    expect(text).toContain('tessera_workload_api_calls_total{method="FetchX509SVID",outcome="invalid_argument"} 2');
  });

  test('update results start at zero and count', async () => {
    const { m, r } = fresh();
    for (const res of ['success', 'failure', 'refused']) expect(await value(r, 'tessera_svid_rotations_total', { result: res })).toBe(0);
    for (const res of ['success', 'refused']) {
      expect(await value(r, 'tessera_trust_bundle_updates_total', { result: res })).toBe(0);
      expect(await value(r, 'tessera_policy_updates_total', { result: res })).toBe(0);
    }
    m.svidRotation('success');
    m.svidRotation('refused');
    m.trustBundleUpdate('refused');
    m.policyUpdate('success');
    m.policyUpdate('success');
    expect(await value(r, 'tessera_svid_rotations_total', { result: 'success' })).toBe(1);
    expect(await value(r, 'tessera_svid_rotations_total', { result: 'refused' })).toBe(1);
    expect(await value(r, 'tessera_svid_rotations_total', { result: 'failure' })).toBe(0);
    expect(await value(r, 'tessera_trust_bundle_updates_total', { result: 'refused' })).toBe(1);
    expect(await value(r, 'tessera_policy_updates_total', { result: 'success' })).toBe(2);
  });

  test('discovery: updates by result from zero, and the connected gauge', async () => {
    const { m, r } = fresh();
    for (const res of ['applied', 'refused']) expect(await value(r, 'tessera_discovery_updates_total', { result: res })).toBe(0);
    expect(await value(r, 'tessera_discovery_connected', {})).toBe(0);
    m.discoveryUpdate('applied');
    m.discoveryUpdate('applied');
    m.discoveryUpdate('refused');
    m.discoveryConnected(true);
    expect(await value(r, 'tessera_discovery_updates_total', { result: 'applied' })).toBe(2);
    expect(await value(r, 'tessera_discovery_updates_total', { result: 'refused' })).toBe(1);
    expect(await value(r, 'tessera_discovery_connected', {})).toBe(1);
    m.discoveryConnected(false);
    expect(await value(r, 'tessera_discovery_connected', {})).toBe(0);
    expect(await value(r, 'tessera_discovery_services_left_out', {})).toBe(0);
    m.discoveryLeftOut(124);
    expect(await value(r, 'tessera_discovery_services_left_out', {})).toBe(124);
  });

  test('label combinations past the per-metric limit fold into one other series, counts preserved', async () => {
    const { m, r } = fresh();
    const n = MAX_SERIES_PER_METRIC + 500;
    for (let i = 0; i < n; i++) m.rejected('inbound', `reason-${i}`);
    const all = await samples(r, 'tessera_requests_rejected_total');
    expect(all.length).toBe(MAX_SERIES_PER_METRIC + 1);
    expect(await value(r, 'tessera_requests_rejected_total', { direction: 'other', reason: 'other' })).toBe(500);
    expect(all.reduce((a, s) => a + s.value, 0)).toBe(n);
  });
});
