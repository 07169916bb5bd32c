// The mesh scenario's tracing and edge variants: generated configs (proxy parser, nginx -t), the OTLP sink process,
// and the summaries that compare tracing on vs off and the Tessera edge vs the nginx edge.
import { X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BenchPki, CLIENT_ID, EDGE_DNS, EDGE_ID, type LeafFiles, SERVER_DNS, SERVER_ID } from '../../../bench/harness/bench-pki.js';
import { findBinary } from '../../../bench/harness/peer-binaries.js';
import type { SupervisedProcess } from '../../../shared-io/process-supervisor.js';
import { startTestProcess } from '../../helpers/ready-process.js';
import type { Measurement } from '../../../bench/harness/scenario.js';
import { nginxClientProxyConfig } from '../../../bench/peers/nginx-config.js';
import { tesseraClientProxyConfig, tesseraEdgeProxyConfig } from '../../../bench/peers/tessera-config.js';
import { HAPROXY, NGINX, NGINX_EDGE, TESSERA, TESSERA_EDGE, TESSERA_TRACE, meshBaselineFor } from '../../../bench/scenarios/mesh.js';
import { edgeHeadlines, spanDeliveryNote, tracingHeadlines } from '../../../bench/scenarios/mesh-headlines.js';
import { pairSummaryRows } from '../../../bench/scenarios/pair-summary.js';
import { decodeCertificates } from '../../../common/pki/pem.js';
import { parseProxyConfig } from '../../../proxy/src/config/proxy-config.js';
import { pairMeasurement } from '../../helpers/pair-measurement.js';

let dir: string;
let pki: BenchPki;
let client: LeafFiles;
let edge: LeafFiles;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-bench-mesh-'));
  pki = await BenchPki.create(dir);
  client = await pki.writeLeaf('client', CLIENT_ID);
  edge = await pki.writeLeaf('edge', EDGE_ID);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('configs', () => {
  const identity = () => ({ certFile: client.chainFile, keyFile: client.keyFile, bundleFile: pki.rootFile });

  test('the edge certificate carries a DNS SAN, as a public certificate does', () => {
    const leaf = new X509Certificate(decodeCertificates(edge.chainPem)[0]!);
    expect(leaf.subjectAltName).toContain(`DNS:${EDGE_DNS}`);
  });

  test("the Tessera edge config passes the proxy's parser: TLS from files, one mTLS route to the sidecar, no authorization", () => {
    const text = tesseraEdgeProxyConfig({
      identity: identity(),
      adminPort: 18901,
      authorization: { policiesDir: join(dir, 'p') },
      listenPort: 18002,
      certFile: edge.chainFile,
      keyFile: edge.keyFile,
      upstreamPort: 18443,
      upstreamSpiffeId: SERVER_ID,
    });
    const c = parseProxyConfig(text, join(dir, 'edge.yaml'));
    expect(c.outbound).toEqual([]);
    expect(c.edge).toHaveLength(1);
    const e = c.edge[0]!;
    expect(e).toMatchObject({ listen: { host: '127.0.0.1', port: 18002 }, certFile: edge.chainFile, keyFile: edge.keyFile, authorize: false });
    expect(e.clientCa).toBeUndefined();
    expect(e.routes).toHaveLength(1);
    expect(e.routes[0]).toMatchObject({ host: '*', pathPrefix: '/', upstream: { port: 18443 }, unsafePlaintext: false });
    expect(e.routes[0]!.spiffeId!.toString()).toBe(SERVER_ID);
    expect(c.telemetry.tracing.otlpEndpoint).toBeUndefined();
  });

  test('tracing keys reach the parsed config with sampler ratio 1; absent, tracing stays off', () => {
    const common = { identity: identity(), listenPort: 18001, upstreamPort: 18443, upstreamSpiffeId: SERVER_ID, adminPort: 18901, authorization: { defaultAction: 'allow' as const } };
    const on = parseProxyConfig(tesseraClientProxyConfig({ ...common, tracing: { otlpEndpoint: 'http://127.0.0.1:4318/v1/traces', samplerRatio: 1 } }), join(dir, 'c.yaml'));
    expect(on.telemetry.tracing).toMatchObject({ otlpEndpoint: 'http://127.0.0.1:4318/v1/traces', samplerRatio: 1 });
    expect(on.telemetry.accessLog).toBe('off');
    const off = parseProxyConfig(tesseraClientProxyConfig(common), join(dir, 'c.yaml'));
    expect(off.telemetry.tracing.otlpEndpoint).toBeUndefined();
  });

  const nginxEdge = () =>
    nginxClientProxyConfig({
      prefix: dir,
      listenPort: 18003,
      upstreamPort: 18443,
      chainFile: client.chainFile,
      keyFile: client.keyFile,
      rootFile: pki.rootFile,
      serverName: SERVER_DNS,
      tlsIn: { chainFile: edge.chainFile, keyFile: edge.keyFile },
    });

  test('nginx edge: TLS listener with the edge certificate, the same mTLS pool upstream as the client side', () => {
    const text = nginxEdge();
    expect(text).toContain('listen 127.0.0.1:18003 ssl;');
    expect(text).toContain(`ssl_certificate ${edge.chainFile};`);
    expect(text).toContain(`ssl_certificate_key ${edge.keyFile};`);
    expect(text).not.toContain('ssl_verify_client');
    expect(text).toMatch(/keepalive 1024;[\s\S]*proxy_ssl_certificate [^\n]*client\.pem;[\s\S]*proxy_ssl_verify on;/);
    const plain = nginxClientProxyConfig({ prefix: dir, listenPort: 18001, upstreamPort: 18443, chainFile: client.chainFile, keyFile: client.keyFile, rootFile: pki.rootFile, serverName: SERVER_DNS });
    expect(plain).toContain('listen 127.0.0.1:18001;');
    expect(plain).not.toMatch(/^\s+ssl_certificate /m);
  });

  test.skipIf(!findBinary('nginx'))('nginx -t accepts the edge config', async () => {
    const file = join(dir, 'edge.conf');
    await writeFile(file, nginxEdge());
    expect(() => execFileSync(findBinary('nginx')!, ['-t', '-q', '-e', join(dir, 'startup.log'), '-p', dir, '-c', file], { stdio: 'pipe' })).not.toThrow();
  });
});

describe('OTLP sink process', () => {
  const script = fileURLToPath(new URL('../../../bench/harness/children/otlp-sink.ts', import.meta.url));
  let sink: SupervisedProcess | undefined;
  let port = 0;

  beforeAll(async () => {
    // Node 24 runs the TypeScript file directly (type stripping); the harness runs the compiled one.
    sink = await startTestProcess({ name: 'otlp-sink', command: process.execPath, args: ['--no-warnings', script, '0'], ready: { line: /^ready \d+/ } });
    port = Number(/^ready (\d+)/.exec(sink.readyLine!)![1]);
  });
  afterAll(async () => {
    await sink?.stop();
  });

  const call = (method: string, path: string, body?: string, contentType = 'application/json') =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method, path, headers: body === undefined ? {} : { 'content-type': contentType } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      req.end(body);
    });

  test('answers 200 to OTLP JSON exports and counts their spans; protobuf is accepted and counted apart', async () => {
    const spans = (n: number) => Array.from({ length: n }, (_, i) => ({ traceId: 'a'.repeat(32), spanId: `${i}`.padStart(16, '0'), name: 'GET' }));
    const doc = { resourceSpans: [{ scopeSpans: [{ spans: spans(2) }, { spans: spans(1) }] }, { scopeSpans: [{ spans: spans(4) }] }] };
    const r = await call('POST', '/v1/traces', JSON.stringify(doc));
    expect(r).toEqual({ status: 200, body: '{}' });
    expect((await call('POST', '/v1/traces', 'not json')).status).toBe(200);
    expect((await call('POST', '/v1/traces', '\x0a\x00', 'application/x-protobuf')).status).toBe(200);
    expect((await call('GET', '/nope')).status).toBe(404);
    const stats = JSON.parse((await call('GET', '/stats')).body);
    expect(stats).toMatchObject({ exports: 3, spans: 7, unparsed: 2 });
    expect(stats.bytes).toBeGreaterThan(0);
  });
});

describe('summaries', () => {
  const m = (variant: string, round: number, client: number, server: number, rps: number, extra: Record<string, number> = {}): Measurement =>
    pairMeasurement(variant, round, client, server, { reqPerSec: rps, p50Ms: 2, p99Ms: 10_000 / rps, p999Ms: 20, ...extra });
  const ms: Measurement[] = [
    m(TESSERA, 1, 80, 80, 5_000),
    m(TESSERA_TRACE, 1, 120, 130, 4_000, { cpuUsPerReqSink: 30 }),
    m(NGINX, 1, 40, 40, 8_000),
    m(HAPROXY, 1, 40, 40, 8_000),
    m(TESSERA_EDGE, 1, 200, 100, 2_000),
    m(NGINX_EDGE, 1, 50, 50, 6_000),
    m(TESSERA, 2, 100, 100, 4_000),
    m(TESSERA_TRACE, 2, 160, 150, 2_000, { cpuUsPerReqSink: 40 }),
    m(NGINX, 2, 50, 50, 6_000),
    m(HAPROXY, 2, 50, 50, 6_000),
    m(TESSERA_EDGE, 2, 300, 100, 1_500),
    m(NGINX_EDGE, 2, 100, 50, 5_000),
  ];

  test('edge rows are compared with the nginx edge in the nginx columns and with nothing in the HAProxy ones', () => {
    const variants = [TESSERA, TESSERA_TRACE, NGINX, HAPROXY, TESSERA_EDGE, NGINX_EDGE];
    const rows = pairSummaryRows(ms, { variants, peerBaselines: [NGINX, HAPROXY], baselineFor: meshBaselineFor });
    const row = (v: string) => rows.find((r) => r['variant'] === v)!;
    // per round: 300/100 = 3, 400/150 = 2.67 → median 2.83
    expect(row(TESSERA_EDGE)['CPU ÷ nginx']).toBe('2.83× (2.67–3.00)');
    expect(row(TESSERA_EDGE)['CPU ÷ HAProxy']).toBe('–');
    expect(row(TESSERA_EDGE)['req/s ÷ HAProxy']).toBe('–');
    expect(row(NGINX_EDGE)['CPU ÷ nginx']).toBe('1');
    expect(row(NGINX_EDGE)['req/s ÷ nginx']).toBe('1');
    // Non-edge rows keep the peer pairs: (250/80, 310/100) → median 3.11
    expect(row(TESSERA_TRACE)['CPU ÷ nginx']).toBe('3.11× (3.10–3.13)');
    expect(row(TESSERA_TRACE)['CPU ÷ HAProxy']).toBe('3.11× (3.10–3.13)');
  });

  test('tracing on vs off: per-round ratios and per-side differences; nothing when either is missing', () => {
    const [h] = tracingHeadlines(ms, TESSERA_TRACE, TESSERA);
    // req/s per round 0.8, 0.5 → 0.65; CPU 250/160, 310/200 = 1.5625, 1.55 → 1.56
    expect(h).toContain('2 rounds');
    expect(h).toContain('req/s 0.65× (0.50–0.80)');
    expect(h).toContain('CPU per request of both proxies 1.56× (1.55–1.56)');
    expect(h).toContain('+50 (40–60) µs/req client side');
    expect(h).toContain('+50 µs/req server side');
    expect(h).toContain('35 µs/req');
    expect(tracingHeadlines(ms.filter((x) => x['variant'] !== TESSERA_TRACE), TESSERA_TRACE, TESSERA)).toEqual([]);
  });

  test('edge vs nginx edge: CPU per side and req/s as per-round ratios', () => {
    const [h] = edgeHeadlines(ms, TESSERA_EDGE, NGINX_EDGE);
    // edge side 200/50 = 4, 300/100 = 3 → 3.5; sidecar side 2, 2; req/s 2000/6000, 1500/5000 → 0.317
    expect(h).toContain('edge side 250 µs = 3.50× (3.00–4.00)');
    expect(h).toContain('sidecar side 100 µs = 2.00×');
    expect(h).toContain('req/s 0.32× (0.30–0.33)');
    expect(edgeHeadlines([ms[0]!], TESSERA_EDGE, NGINX_EDGE)).toEqual([]);
  });

  test('span delivery: spans received against requests handled on both proxies', () => {
    expect(spanDeliveryNote(1_990, 2_000, 4)).toContain('(one span per request per proxy expected: 99.5 %)');
    expect(spanDeliveryNote(0, 0, 0)).toContain('–');
  });
});
