// Spans from the proxy's request tracer reach a real OTLP/HTTP receiver on loopback, parented on the caller's
// traceparent, and the outgoing traceparent keeps the caller's trace id.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { parseTraceparent } from '../../common/tracing/traceparent.js';
import { createRequestTracer } from '../../proxy/src/telemetry/tracing.js';

const bodies: string[] = [];
const receiver = createServer((req, res) => {
  let body = '';
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    bodies.push(body);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
let url = '';
beforeAll(async () => {
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/traces`;
});
afterAll(() => new Promise<void>((r) => receiver.close(() => r())));

test('off without an endpoint', () => {
  expect(createRequestTracer({ sampler: { name: 'parentbased_always_on', ratio: 1 }, resource: { 'service.name': 's', 'spiffe.id': 'spiffe://td/x' } })).toBeNull();
});

test('a span per request, exported over OTLP/HTTP, child of the caller', async () => {
  const tracer = createRequestTracer({ endpoint: url, sampler: { name: 'parentbased_traceidratio', ratio: 1 }, resource: { 'service.name': 'tessera-proxy', 'spiffe.id': 'spiffe://example.org/api' } })!;
  const caller = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const span = tracer.start('GET', 'inbound', { traceparent: caller }, { 'http.method': 'GET', 'tessera.peer': 'spiffe://example.org/web' });
  const out = parseTraceparent(span.traceparent)!;
  expect(out.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
  expect(out.parentId).not.toBe('00f067aa0ba902b7');
  expect(out.flags & 1).toBe(1);
  span.end({ 'http.status_code': 200, 'tessera.decision': 'allow' });
  const unsampled = tracer.start('GET', 'inbound', { traceparent: '00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00' }, {});
  expect(parseTraceparent(unsampled.traceparent)!.flags & 1).toBe(0);
  unsampled.end({});
  // A new trace (no caller's traceparent): the ids sent upstream are the exported span's own.
  const root = tracer.start('GET', 'outbound', { traceparent: undefined }, {});
  const rootOut = parseTraceparent(root.traceparent)!;
  expect(rootOut.flags & 1).toBe(1);
  root.end({ 'http.status_code': 200 });
  await tracer.shutdown();
  const all = bodies.join('\n');
  expect(all).toContain('4bf92f3577b34da6a3ce929d0e0e4736');
  expect(all).toContain('tessera.decision');
  expect(all).not.toContain('5bf92f3577b34da6a3ce929d0e0e4736');
  type OtlpSpan = { traceId: string; spanId: string; parentSpanId?: string; name: string };
  const spans = bodies.flatMap((b) => (JSON.parse(b) as { resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[] }).resourceSpans.flatMap((r) => r.scopeSpans.flatMap((x) => x.spans)));
  expect(spans.map((x) => ({ traceId: x.traceId, spanId: x.spanId, parentSpanId: x.parentSpanId || undefined, name: x.name }))).toEqual([
    { traceId: out.traceId, spanId: out.parentId, parentSpanId: '00f067aa0ba902b7', name: 'GET inbound' },
    { traceId: rootOut.traceId, spanId: rootOut.parentId, parentSpanId: undefined, name: 'GET outbound' },
  ]);
});
