// OpenTelemetry tracing for proxied requests: a span per request, parented on the caller's W3C traceparent,
// and the traceparent to send upstream. Spans are created explicitly (ESM auto-instrumentation misses modules).
// Sampling is decided first (sampling.ts); only a sampled request builds a span through the SDK.
import { type Context, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, TraceFlags, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor, type IdGenerator, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { formatTraceparent, parseTraceparent, type TraceParent } from '../../../common/tracing/traceparent.js';
import { parseTracestate } from '../../../common/tracing/tracestate.js';
import { realTimers, type Timers } from '../../../shared-io/timers.js';
import { shouldSample } from './sampling.js';
import { TraceIds } from './trace-ids.js';
import type { SamplerSetting } from './tracing-settings.js';
import { settledWithin } from '../../../shared-io/bounded-wait.js';
import { BoundedSpanQueue, ReportingExporter, type SpanOutcomes } from './span-accounting.js';

export interface TracingOptions {
  /** OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces. Tracing is off without one (or an exporter). */
  readonly endpoint?: string;
  /** The OpenTelemetry sampler; the parentbased_* ones honour a caller's sampled flag. */
  readonly sampler: SamplerSetting;
  /** Resource attributes of every span; service.name and spiffe.id (this proxy's SPIFFE ID) among them. */
  readonly resource: Readonly<Record<string, string>>;
  /** For tests: an exporter other than OTLP. */
  readonly exporter?: SpanExporter;
  /**
   * How long shutdown() waits for the last spans to be exported (default 2000 ms). A collector that accepts and
   * never answers would otherwise hold the proxy's exit for the exporter's own timeout (10 s, measured 8.5 s).
   */
  readonly shutdownTimeoutMs?: number;
  /** The shutdown bound's timer (default: the real timers, unref'd). */
  readonly timers?: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
  /** Told what became of the sampled spans: exported, lost in a failed export, dropped on a full queue. */
  readonly onSpans?: SpanOutcomes;
}

/** Spans ended and not yet through an export; the next one is dropped (and counted). */
export const MAX_QUEUED_SPANS = 4096;
const EXPORT_BATCH = 512;

/** The trace context a request came with: its traceparent (field lines joined by ", ") and tracestate. */
export interface IncomingTrace {
  readonly traceparent: string | undefined;
  readonly tracestate?: string | undefined;
}

export interface RequestSpan {
  /** The traceparent to send upstream (this span as parent). */
  readonly traceparent: string;
  /** The caller's tracestate, checked, when its trace is continued; undefined for a new trace (none is sent). */
  readonly tracestate: string | undefined;
  end(attrs: Readonly<Record<string, string | number | boolean | undefined>>, error?: string): void;
}

export interface RequestTracer {
  /** The span `<method> <direction>` (a method outside the standard ones is `_OTHER`, as OpenTelemetry names it). */
  start(method: string, direction: 'inbound' | 'outbound' | 'edge', incoming: IncomingTrace, attrs: Readonly<Record<string, string | number | undefined>>): RequestSpan;
  shutdown(): Promise<void>;
}

function parentContext(tp: TraceParent | null): Context {
  if (!tp) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, { traceId: tp.traceId, spanId: tp.parentId, traceFlags: tp.flags & TraceFlags.SAMPLED, isRemote: true });
}

/**
 * The SDK's id source, handed the ids the request already has: the traceparent sent upstream was formatted (and the
 * sampling decided) before the SDK saw the request. Set right before each synchronous startSpan.
 */
class GivenIds implements IdGenerator {
  traceId = '';
  spanId = '';
  generateTraceId(): string {
    return this.traceId;
  }
  generateSpanId(): string {
    return this.spanId;
  }
}

const UNSAMPLED_END = () => {};

/** HTTP's methods (RFC 9110, RFC 5789): span names and attributes take no other, so a caller cannot mint them. */
const METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);
export const spanMethod = (method: string): string => (METHODS.has(method) ? method : '_OTHER');

function clean(attrs: Readonly<Record<string, string | number | boolean | undefined>>): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) out[k] = v;
  return out;
}

/** Returns null when tracing is off: callers then forward the caller's traceparent untouched. */
export function createRequestTracer(opts: TracingOptions): RequestTracer | null {
  const inner = opts.exporter ?? (opts.endpoint ? new OTLPTraceExporter({ url: opts.endpoint }) : undefined);
  if (!inner) return null;
  const report: SpanOutcomes = opts.onSpans ?? (() => {});
  // The queue bound is kept in front of the batch processor (span-accounting.ts); its own queue has room for one
  // batch more, so it never drops a span uncounted.
  let queue: BoundedSpanQueue | undefined;
  const exporter = new ReportingExporter(inner, report, (n) => queue?.settled(n));
  queue = new BoundedSpanQueue(new BatchSpanProcessor(exporter, { maxQueueSize: MAX_QUEUED_SPANS + EXPORT_BATCH, maxExportBatchSize: EXPORT_BATCH, scheduledDelayMillis: 1000 }), MAX_QUEUED_SPANS, report);
  const given = new GivenIds();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes(opts.resource),
    // The decision is made here (shouldSample); the SDK only ever sees requests to record.
    sampler: new AlwaysOnSampler(),
    idGenerator: given,
    spanProcessors: [queue],
  });
  const tracer = provider.getTracer('tessera-proxy');
  const ids = new TraceIds();
  return {
    start(method, direction, incoming, attrs) {
      const parent = parseTraceparent(incoming.traceparent);
      const traceId = parent?.traceId ?? ids.traceId();
      const spanId = ids.spanId();
      const sampled = shouldSample(opts.sampler, parent, traceId);
      const traceparent = formatTraceparent({ traceId, parentId: spanId, flags: sampled ? TraceFlags.SAMPLED : TraceFlags.NONE });
      // W3C: a tracestate belongs to the trace it came with; a new trace starts without one.
      const tracestate = parent ? parseTracestate(incoming.tracestate) : undefined;
      if (!sampled) return { traceparent, tracestate, end: UNSAMPLED_END };
      given.traceId = traceId;
      given.spanId = spanId;
      const kind = direction === 'outbound' ? SpanKind.CLIENT : SpanKind.SERVER;
      const name = spanMethod(method);
      const span: Span = tracer.startSpan(`${name} ${direction}`, { kind, attributes: { 'tessera.direction': direction, 'http.request.method': name, ...clean(attrs) } }, parentContext(parent));
      return {
        traceparent,
        tracestate,
        end(endAttrs, error) {
          span.setAttributes(clean(endAttrs));
          if (error) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
          span.end();
        },
      };
    },
    // Best effort, bounded: spans still unexported when the bound passes are lost (the process is exiting). A
    // collector that refuses the last export (4xx, 5xx, a redirect) rejects the SDK's flush: that loss is reported
    // (onSpans) and must not fail the shutdown, whose access-log flush and admin close come after it.
    shutdown: async () => {
      await settledWithin(provider.shutdown().catch(() => {}), opts.shutdownTimeoutMs ?? 2_000, opts.timers ?? realTimers);
    },
  };
}
