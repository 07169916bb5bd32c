// The sampling decision made before a span exists gives, for every sampler name, what the OpenTelemetry SDK's
// sampler of that name decides (the SDK's own samplers are the reference here); and the ids it is made on.
import { ROOT_CONTEXT, SamplingDecision, SpanKind, TraceFlags, trace } from '@opentelemetry/api';
import { AlwaysOffSampler, AlwaysOnSampler, ParentBasedSampler, type Sampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { TraceParent } from '../../../../common/tracing/traceparent.js';
import { ratioSamples, shouldSample } from '../../../../proxy/src/telemetry/sampling.js';
import { TraceIds } from '../../../../proxy/src/telemetry/trace-ids.js';
import { SAMPLERS, type SamplerSetting } from '../../../../proxy/src/telemetry/tracing-settings.js';
import { fuzzParams } from '../../../helpers/fuzz-params.js';

/** The SDK sampler an OTEL_TRACES_SAMPLER name stands for (the OpenTelemetry SDK environment spec). */
function sdkSampler(s: SamplerSetting): Sampler {
  const root = s.name.endsWith('always_off') ? new AlwaysOffSampler() : s.name.endsWith('traceidratio') ? new TraceIdRatioBasedSampler(s.ratio) : new AlwaysOnSampler();
  return s.name.startsWith('parentbased_') ? new ParentBasedSampler({ root }) : root;
}

function sdkDecides(s: SamplerSetting, parent: TraceParent | null, traceId: string): boolean {
  const ctx = parent ? trace.setSpanContext(ROOT_CONTEXT, { traceId: parent.traceId, spanId: parent.parentId, traceFlags: parent.flags & TraceFlags.SAMPLED, isRemote: true }) : ROOT_CONTEXT;
  return sdkSampler(s).shouldSample(ctx, traceId, 'GET inbound', SpanKind.SERVER, {}, []).decision === SamplingDecision.RECORD_AND_SAMPLED;
}

const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`)).filter((h) => !/^0+$/.test(h));
const ratio = fc.oneof(fc.constantFrom(0, 1, 0.5, 0.01, 1e-9, 0.999999), fc.double({ min: 0, max: 1, noNaN: true }));

describe('shouldSample', () => {
  test('decides as the SDK sampler of the same name, for new traces and for callers sampled or not', () => {
    fc.assert(
      fc.property(fc.constantFrom(...SAMPLERS), ratio, hex(32), fc.option(fc.record({ parentId: hex(16), flags: fc.integer({ min: 0, max: 255 }) })), (name, r, traceId, p) => {
        const setting = { name, ratio: r };
        const parent = p ? { traceId, parentId: p.parentId, flags: p.flags } : null;
        expect(shouldSample(setting, parent, traceId)).toBe(sdkDecides(setting, parent, traceId));
      }),
      fuzzParams(0x5a3b, 3000),
    );
  });

  test('the ratio rule samples about its share of random trace ids, and all or none at 1 and 0', () => {
    const ids = new TraceIds();
    const traceIds = Array.from({ length: 20_000 }, () => ids.traceId());
    const share = (r: number) => traceIds.filter((t) => ratioSamples(r, t)).length / traceIds.length;
    expect(share(1)).toBe(1);
    expect(share(0)).toBe(0);
    expect(share(0.1)).toBeGreaterThan(0.08);
    expect(share(0.1)).toBeLessThan(0.12);
  });
});

describe('TraceIds', () => {
  test('hex ids of 32 and 16 digits, distinct, across several refills of the pool', () => {
    const ids = new TraceIds();
    const traces = new Set<string>();
    const spans = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      traces.add(ids.traceId());
      spans.add(ids.spanId());
    }
    expect(traces.size).toBe(2000);
    expect(spans.size).toBe(2000);
    for (const t of traces) expect(t).toMatch(/^[0-9a-f]{32}$/);
    for (const s of spans) expect(s).toMatch(/^[0-9a-f]{16}$/);
  });
});
