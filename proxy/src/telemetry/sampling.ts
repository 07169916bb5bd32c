// Whether a request's span is sampled, decided before any span object exists: a request that is not sampled (most
// of them at a 1 % ratio) then costs two ids and a traceparent, and nothing of the OpenTelemetry SDK. The rules are
// the SDK's samplers of the same names (test/unit/proxy/telemetry/sampling.test.ts holds them side by side).
import type { TraceParent } from '../../../common/tracing/traceparent.js';
import type { SamplerSetting } from './tracing-settings.js';

/** TraceIdRatioBased: the XOR of the trace id's four 32-bit words, below ratio × (2^32 − 1); every id at ratio 1. */
export function ratioSamples(ratio: number, traceId: string): boolean {
  if (!(ratio > 0)) return false;
  if (ratio >= 1) return true;
  let acc = 0;
  for (let i = 0; i < 32; i += 8) acc = (acc ^ Number.parseInt(traceId.slice(i, i + 8), 16)) >>> 0;
  return acc < Math.floor(ratio * 0xffffffff);
}

/**
 * The decision for a span whose caller sent `parent` (null: a new trace) in trace `traceId`. The parentbased_*
 * samplers follow a caller's sampled flag (a remote parent: sampled → always on, not sampled → always off) and use
 * their root sampler only for new traces; the others ignore the caller's flag.
 */
export function shouldSample(s: SamplerSetting, parent: TraceParent | null, traceId: string): boolean {
  if (parent !== null && s.name.startsWith('parentbased_')) return (parent.flags & 1) === 1;
  if (s.name.endsWith('always_on')) return true;
  if (s.name.endsWith('always_off')) return false;
  return ratioSamples(s.ratio, traceId);
}
