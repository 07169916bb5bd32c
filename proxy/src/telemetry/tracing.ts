// OpenTelemetry tracing for proxied requests: a span per request, parented on the caller's W3C traceparent,
// and the traceparent to send upstream. Spans are created explicitly (ESM auto-instrumentation misses modules).
// Sampling is decided first (sampling.ts); only a sampled request builds a span through the SDK.
import { type Context, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, TraceFlags, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor, type IdGenerator, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { formatTraceparent, parseTraceparent, type TraceParent } from '../../../common/tracing/traceparent.js';
import { realTimers, type Timers } from '../../../shared-io/timers.js';
import { shouldSample } from './sampling.js';
import { TraceIds } from './trace-ids.js';
import type { SamplerSetting } from './tracing-settings.js';
import { settledWithin } from '../../../shared-io/bounded-wait.js';

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
}

export interface RequestSpan {
  /** The traceparent to send upstream (this span as parent). */
  readonly traceparent: string;
  end(attrs: Readonly<Record<string, string | number | boolean | undefined>>, error?: string): void;
}

export interface RequestTracer {
  start(name: string, direction: 'inbound' | 'outbound' | 'edge', incomingTraceparent: string | undefined, attrs: Readonly<Record<string, string | number | undefined>>): RequestSpan;
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

function clean(attrs: Readonly<Record<string, string | number | boolean | undefined>>): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) out[k] = v;
  return out;
}

/** Returns null when tracing is off: callers then forward the caller's traceparent untouched. */
export function createRequestTracer(opts: TracingOptions): RequestTracer | null {
  const exporter = opts.exporter ?? (opts.endpoint ? new OTLPTraceExporter({ url: opts.endpoint }) : undefined);
  if (!exporter) return null;
  const given = new GivenIds();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes(opts.resource),
    // The decision is made here (shouldSample); the SDK only ever sees requests to record.
    sampler: new AlwaysOnSampler(),
    idGenerator: given,
    spanProcessors: [new BatchSpanProcessor(exporter, { maxQueueSize: 4096, scheduledDelayMillis: 1000 })],
  });
  const tracer = provider.getTracer('tessera-proxy');
  const ids = new TraceIds();
  return {
    start(name, direction, incoming, attrs) {
      const parent = parseTraceparent(incoming);
      const traceId = parent?.traceId ?? ids.traceId();
      const spanId = ids.spanId();
      const sampled = shouldSample(opts.sampler, parent, traceId);
      const traceparent = formatTraceparent({ traceId, parentId: spanId, flags: sampled ? TraceFlags.SAMPLED : TraceFlags.NONE });
      if (!sampled) return { traceparent, end: UNSAMPLED_END };
      given.traceId = traceId;
      given.spanId = spanId;
      const kind = direction === 'outbound' ? SpanKind.CLIENT : SpanKind.SERVER;
      const span: Span = tracer.startSpan(name, { kind, attributes: { 'tessera.direction': direction, ...clean(attrs) } }, parentContext(parent));
      return {
        traceparent,
        end(endAttrs, error) {
          span.setAttributes(clean(endAttrs));
          if (error) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
          span.end();
        },
      };
    },
    // Best effort, bounded: spans still unexported when the bound passes are lost (the process is exiting).
    shutdown: async () => {
      await settledWithin(provider.shutdown(), opts.shutdownTimeoutMs ?? 2_000, opts.timers ?? realTimers);
    },
  };
}
