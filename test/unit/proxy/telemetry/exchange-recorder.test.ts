// The one exchange recorder: the access-log line (documented fields only, as docs/metrics.md lists them), the
// request metrics as scraped from a real registry, and the span ended with its attributes (in-memory exporter).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { type AccessLog, createAccessLog } from '../../../../proxy/src/telemetry/access-log.js';
import { type Exchange, ExchangeRecorder, grpcCodeLabel, verdictOf } from '../../../../proxy/src/telemetry/exchange-recorder.js';
import { ProxyMetrics, createProxyRegistry } from '../../../../proxy/src/telemetry/metrics.js';
import { createRequestTracer } from '../../../../proxy/src/telemetry/tracing.js';

const WEB = 'spiffe://example.org/ns/default/sa/web';
const API = 'spiffe://example.org/ns/default/sa/api';
const clock = { nowMs: () => 1_767_225_600_123 };

/** A real registry and a real access log in a temporary file, fresh per test. */
let f: { dir: string; file: string; registry: Registry; metrics: ProxyMetrics; log: AccessLog };

beforeEach(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-exchange-'));
  const registry = createProxyRegistry();
  const file = join(dir, 'access.log');
  f = { dir, file, registry, metrics: new ProxyMetrics(registry, { defaultMetrics: false }), log: createAccessLog({ destination: file, clock }) };
});
afterEach(async () => {
  await f.log.close();
  await rm(f.dir, { recursive: true, force: true });
});

async function lines(): Promise<string[]> {
  await f.log.flush();
  return (await readFile(f.file, 'utf8')).split('\n').filter((l) => l !== '');
}

async function requests(): Promise<{ labels: Record<string, string | number>; value: number }[]> {
  return (await f.registry.getSingleMetric('tessera_requests_total')!.get()).values as { labels: Record<string, string | number>; value: number }[];
}

async function durationCount(labels: Record<string, string>): Promise<number | undefined> {
  const values = (await f.registry.getSingleMetric('tessera_request_duration_seconds')!.get()).values as { labels: Record<string, string>; value: number; metricName?: string }[];
  return values.find((v) => v.metricName === 'tessera_request_duration_seconds_count' && Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;
}

const inboundHttp: Exchange = {
  direction: 'inbound',
  protocol: 'http',
  listener: 'api-in',
  requestId: 'r-1',
  peer: WEB,
  method: 'GET',
  path: '/v1/items?token=secret',
  status: 200,
  ...verdictOf({ allowed: true, policy: 'api-allow-web' }),
  bytesIn: 12,
  bytesOut: 345,
  durationMs: 1.2345,
  upstream: '127.0.0.1:8080',
  resumed: true,
};

describe('ExchangeRecorder', () => {
  test('an inbound HTTP exchange: one access-log line with the documented fields in order, counted and timed', async () => {
    new ExchangeRecorder(f.metrics, f.log).record(inboundHttp);
    expect(await lines()).toEqual([
      '{"log":"access","time":1767225600123,"requestId":"r-1","direction":"inbound","protocol":"http","peer":"spiffe://example.org/ns/default/sa/web","method":"GET","path":"/v1/items","status":200,"decision":"allow","policy":"api-allow-web","bytesIn":12,"bytesOut":345,"durationMs":1.235,"upstream":"127.0.0.1:8080","resumed":true}',
    ]);
    expect(await requests()).toEqual([{ labels: { direction: 'inbound', protocol: 'http', code: '200', listener: 'api-in', peer: WEB }, value: 1 }]);
    expect(await durationCount({ direction: 'inbound', listener: 'api-in', peer: WEB })).toBe(1);
  });

  test("an exchange that carries its end time is logged at that time, without reading the log's clock", async () => {
    new ExchangeRecorder(f.metrics, f.log).record({ ...inboundHttp, endMs: 1_767_225_599_000 });
    const [line] = (await lines()).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(line!['time']).toBe(1_767_225_599_000);
    expect(line!['durationMs']).toBe(1.235);
  });

  test('a TCP connection: the outcome labels the metrics but the line has no status; a denied one logs its verdict', async () => {
    const r = new ExchangeRecorder(f.metrics, f.log);
    r.record({ direction: 'inbound', protocol: 'tcp', listener: 'db-in', requestId: 't-1', peer: 'unauthenticated', status: 403, ...verdictOf({ allowed: false, policy: null }), bytesIn: 0, bytesOut: 0, durationMs: 0.5, upstream: '127.0.0.1:5432', clientIp: '127.0.0.1', error: 'authz_denied' });
    r.record({ direction: 'outbound', protocol: 'tcp', listener: 'db-out', requestId: 't-2', peer: API, status: 200, bytesIn: 5, bytesOut: 6, durationMs: 2, upstream: '127.0.0.1:15006', resumed: false });
    const [denied, relayed] = (await lines()).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(denied).toEqual({ log: 'access', time: clock.nowMs(), requestId: 't-1', direction: 'inbound', protocol: 'tcp', peer: 'unauthenticated', clientIp: '127.0.0.1', decision: 'deny', policy: null, bytesIn: 0, bytesOut: 0, durationMs: 0.5, upstream: '127.0.0.1:5432', error: 'authz_denied' });
    expect(relayed).toEqual({ log: 'access', time: clock.nowMs(), requestId: 't-2', direction: 'outbound', protocol: 'tcp', peer: API, bytesIn: 5, bytesOut: 6, durationMs: 2, upstream: '127.0.0.1:15006', resumed: false });
    const codes = (await requests()).map((s) => [s.labels.listener, s.labels.code]);
    expect(codes).toEqual([
      ['db-in', '403'],
      ['db-out', '200'],
    ]);
  });

  test('a gRPC call is counted by its grpc-status; an HTTP/2 stream cut before a response counts as other', async () => {
    const r = new ExchangeRecorder(f.metrics, f.log);
    r.record({ ...inboundHttp, protocol: 'grpc', listener: 'g', status: 200, grpcStatus: '7' });
    r.record({ ...inboundHttp, protocol: 'http2', listener: 'h', status: 0, error: 'downstream_reset' });
    const codes = (await requests()).map((s) => [s.labels.listener, s.labels.code]);
    expect(codes).toEqual([
      ['g', '7'],
      ['h', 'other'],
    ]);
  });

  test("an edge exchange: the metrics label only a SPIFFE ID (none here) while the line names the client's subject", async () => {
    new ExchangeRecorder(f.metrics, f.log).record({ direction: 'edge', protocol: 'http2', listener: 'public', requestId: 'e-1', peer: 'O=Partner', peerLabel: '', method: 'GET', path: '/', status: 404, bytesIn: 0, bytesOut: 10, durationMs: 1, resumed: false, error: 'no_route' });
    const [line] = (await lines()).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(line).toMatchObject({ peer: 'O=Partner', status: 404, error: 'no_route' });
    expect(line).not.toHaveProperty('decision');
    expect(line).not.toHaveProperty('policy');
    expect(line).not.toHaveProperty('upstream');
    expect((await requests())[0]!.labels.peer).toBe('none');
  });

  test('the span is ended with the status, verdict, upstream and error, and the line carries its trace id', async () => {
    // Keeps what it exported past shutdown (the SDK's in-memory exporter forgets it then).
    const finished: ReadableSpan[] = [];
    const exporter: SpanExporter = {
      export: (spans, done) => {
        finished.push(...spans);
        done({ code: 0 }); // ExportResultCode.SUCCESS
      },
      shutdown: () => Promise.resolve(),
    };
    const tracer = createRequestTracer({ exporter, sampler: { name: 'always_on', ratio: 1 }, resource: { 'service.name': 't', 'spiffe.id': API } })!;
    const span = tracer.start('POST', 'inbound', { traceparent: undefined }, { 'tessera.peer': WEB, 'tessera.request_id': 'r-9' });
    new ExchangeRecorder(f.metrics, f.log).record({ ...inboundHttp, protocol: 'grpc', requestId: 'r-9', status: 200, grpcStatus: '14', error: 'upstream_unavailable', span });
    await tracer.shutdown();
    const [exported] = finished;
    expect(exported!.attributes).toMatchObject({ 'http.status_code': 200, 'rpc.grpc.status_code': 14, 'tessera.decision': 'allow', 'tessera.upstream': '127.0.0.1:8080' });
    expect(exported!.status).toMatchObject({ code: 2, message: 'upstream_unavailable' });
    const [line] = (await lines()).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(line!.traceId).toBe(exported!.spanContext().traceId);
  });

  test('with the access log off nothing is written, and the exchange is still counted', async () => {
    const off = createAccessLog({ destination: 'off', clock });
    new ExchangeRecorder(f.metrics, off).record(inboundHttp);
    expect(await lines()).toEqual([]);
    expect((await requests())[0]!.value).toBe(1);
  });
});

test('a gRPC exchange is counted under its status only when it is one of gRPC\'s codes: an app or peer mints no label values', () => {
  for (const ok of ['0', '7', '16', 'none']) expect(grpcCodeLabel(ok)).toBe(ok);
  for (const made of ['17', '99', '-1', '01', ' 1', '1\n', 'x'.repeat(5000), 'OK', '', '1e1']) expect(grpcCodeLabel(made), JSON.stringify(made)).toBe('invalid');
});

test('recorded: 2,000 made-up grpc-status values from a peer are one `invalid` series, real codes keep their own', async () => {
  const r = new ExchangeRecorder(f.metrics, f.log);
  const grpc: Exchange = { ...inboundHttp, protocol: 'grpc', status: 200 };
  for (let i = 0; i < 2_000; i++) r.record({ ...grpc, grpcStatus: `bogus-${i}` });
  r.record({ ...grpc, grpcStatus: '14' });
  const codes = (await requests()).filter((v) => v.labels['protocol'] === 'grpc').map((v) => [v.labels['code'], v.value]);
  expect(codes.sort()).toEqual([['14', 1], ['invalid', 2_000]]);
});

test("a gRPC exchange's line carries grpcStatus, the same value its `code` label has; none, invalid and non-gRPC have none", async () => {
  const r = new ExchangeRecorder(f.metrics, f.log);
  const grpc: Exchange = { ...inboundHttp, protocol: 'grpc', status: 200 };
  for (const [id, grpcStatus] of [['ok', '0'], ['app', '9'], ['denied', '7'], ['max', '16'], ['cut', 'none'], ['made', '99'], ['text', 'OK']] as const) r.record({ ...grpc, requestId: id, grpcStatus });
  r.record({ ...inboundHttp, requestId: 'h1' });
  const logged = (await lines()).map((l) => JSON.parse(l) as Record<string, unknown>).map((l) => [l['requestId'], l['grpcStatus']]);
  expect(logged).toEqual([['ok', 0], ['app', 9], ['denied', 7], ['max', 16], ['cut', undefined], ['made', undefined], ['text', undefined], ['h1', undefined]]);
  // Right after status in the line, as the table in docs/metrics.md lists it.
  expect((await lines())[1]).toContain('"status":200,"grpcStatus":9,"decision":"allow"');
  const codes = Object.fromEntries((await requests()).filter((v) => v.labels['protocol'] === 'grpc').map((v) => [v.labels['code'], v.value]));
  expect(codes).toEqual({ '0': 1, '9': 1, '7': 1, '16': 1, none: 1, invalid: 2 });
});
