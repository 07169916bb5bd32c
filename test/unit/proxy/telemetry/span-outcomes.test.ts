// What becomes of sampled spans, counted and logged (an outside audit found them lost without a trace): a refused
// export, a full queue, recovery; a collector that refuses the last export does not fail the shutdown; and the
// trace context a traced request is sent on with: span names from a closed set of methods, tracestate only with
// the trace it came with.
import { ExportResultCode } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { Registry } from 'prom-client';
import { describe, expect, test } from 'vitest';
import { parseTraceparent } from '../../../../common/tracing/traceparent.js';
import type { SpanOutcome } from '../../../../proxy/src/telemetry/span-accounting.js';
import { reportSpanOutcomes } from '../../../../proxy/src/telemetry/span-outcome-report.js';
import { createRequestTracer, MAX_QUEUED_SPANS } from '../../../../proxy/src/telemetry/tracing.js';
import { sumSeries } from '../../../helpers/prom-metrics.js';

const settings = { sampler: { name: 'parentbased_always_on' as const, ratio: 1 }, resource: { 'service.name': 't', 'spiffe.id': 'spiffe://example.org/ns/default/sa/api' } };
const CALLER = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

/** An exporter whose answer the test decides: SUCCESS, FAILED (a 4xx/5xx), or never (held until released). */
function collector(answer: () => 'ok' | 'refuse' | 'hold') {
  const held: (() => void)[] = [];
  const names: string[] = [];
  const exporter: SpanExporter = {
    export: (spans: ReadableSpan[], done) => {
      const a = answer();
      if (a === 'hold') return void held.push(() => done({ code: ExportResultCode.FAILED, error: new Error('timeout') }));
      names.push(...spans.map((s) => s.name));
      done(a === 'ok' ? { code: ExportResultCode.SUCCESS } : { code: ExportResultCode.FAILED, error: Object.assign(new Error('Bad Request'), { name: 'OTLPExporterError', code: 400 }) });
    },
    shutdown: () => Promise.resolve(),
  };
  return {
    exporter,
    names,
    release: () => {
      for (const f of held.splice(0)) f();
    },
  };
}

function outcomes() {
  const seen: Record<SpanOutcome, number> = { exported: 0, export_failed: 0, queue_full: 0 };
  return {
    seen,
    onSpans: (o: SpanOutcome, n: number) => {
      seen[o] += n;
    },
  };
}

describe('span outcomes', () => {
  test('a collector that refuses: the spans are counted as export_failed, and the shutdown still resolves', async () => {
    const c = collector(() => 'refuse');
    const o = outcomes();
    const tracer = createRequestTracer({ ...settings, exporter: c.exporter, onSpans: o.onSpans })!;
    for (let i = 0; i < 3; i++) tracer.start('GET', 'inbound', { traceparent: undefined }, {}).end({ 'http.status_code': 200 });
    await expect(tracer.shutdown()).resolves.toBeUndefined();
    expect(o.seen).toEqual({ exported: 0, export_failed: 3, queue_full: 0 });
  });

  test('past MAX_QUEUED_SPANS between end and export, spans are dropped and counted as queue_full; taken again once exports answer', async () => {
    let mode: 'hold' | 'ok' = 'hold';
    const c = collector(() => mode);
    const o = outcomes();
    const tracer = createRequestTracer({ ...settings, exporter: c.exporter, onSpans: o.onSpans })!;
    for (let i = 0; i < MAX_QUEUED_SPANS + 10; i++) tracer.start('GET', 'outbound', { traceparent: undefined }, {}).end({});
    expect(o.seen.queue_full).toBe(10);
    mode = 'ok';
    c.release();
    tracer.start('POST', 'outbound', { traceparent: undefined }, {}).end({});
    await tracer.shutdown();
    expect(o.seen.queue_full).toBe(10);
    expect(o.seen.exported + o.seen.export_failed).toBe(MAX_QUEUED_SPANS + 1);
    expect(c.names).toContain('POST outbound');
  });

  test('the report: counted by outcome, one warning when spans start being lost, one line when exports work again', () => {
    const registry = new Registry();
    const lines: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
    const log = { warn: (fields: object, msg: string) => void lines.push({ level: 'warn', msg, fields: fields as Record<string, unknown> }), info: (fields: object, msg: string) => void lines.push({ level: 'info', msg, fields: fields as Record<string, unknown> }) };
    const report = reportSpanOutcomes(registry, log as never);
    report('exported', 5);
    report('export_failed', 4, Object.assign(new Error('Service Unavailable: secret body'), { name: 'OTLPExporterError', code: 503 }));
    report('export_failed', 4);
    report('queue_full', 1);
    report('exported', 2);
    expect(lines.map((l) => l.level)).toEqual(['warn', 'info']);
    expect(lines[0]!.fields).toMatchObject({ outcome: 'export_failed', spans: 4, reason: 'OTLPExporterError: 503' });
    expect(JSON.stringify(lines)).not.toContain('secret body');
    expect(lines[1]!.fields).toEqual({ lost: 9 });
    return registry.metrics().then((text) => {
      expect(sumSeries(text, 'tessera_trace_spans_total', { outcome: 'exported' })).toBe(7);
      expect(sumSeries(text, 'tessera_trace_spans_total', { outcome: 'export_failed' })).toBe(8);
      expect(sumSeries(text, 'tessera_trace_spans_total', { outcome: 'queue_full' })).toBe(1);
    });
  });
});

describe('the trace context sent on', () => {
  const tracer = () => createRequestTracer({ ...settings, exporter: collector(() => 'ok').exporter })!;

  test('tracestate rides along a continued trace (checked), never a new one', () => {
    const t = tracer();
    expect(t.start('GET', 'inbound', { traceparent: CALLER, tracestate: ' congo=t61rcWkgMzE ,rojo=00f067aa0ba902b7' }, {}).tracestate).toBe('congo=t61rcWkgMzE,rojo=00f067aa0ba902b7');
    expect(t.start('GET', 'inbound', { traceparent: CALLER, tracestate: 'Bad Key=x' }, {}).tracestate).toBeUndefined();
    for (const traceparent of [undefined, 'zz', `${CALLER}, 00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`]) {
      const span = t.start('GET', 'inbound', { traceparent, tracestate: 'vendor=secret' }, {});
      expect(span.tracestate, String(traceparent)).toBeUndefined();
      expect(parseTraceparent(span.traceparent)!.traceId).not.toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    }
  });

  test("span names take a standard method or _OTHER: a caller's method never becomes a name", async () => {
    const c = collector(() => 'ok');
    const t = createRequestTracer({ ...settings, exporter: c.exporter })!;
    for (const m of ['GET', 'PATCH', 'X'.repeat(300), 'get', 'PROPFIND']) t.start(m, 'edge', { traceparent: undefined }, {}).end({});
    await t.shutdown();
    expect(c.names).toEqual(['GET edge', 'PATCH edge', '_OTHER edge', '_OTHER edge', '_OTHER edge']);
  });
});
