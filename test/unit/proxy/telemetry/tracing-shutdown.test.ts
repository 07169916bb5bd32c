// The tracer's shutdown (the last step of a proxy's stop): spans still waiting are exported, but a collector that
// never answers holds it for shutdownTimeoutMs at most (fake timers: nothing sleeps).
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { describe, expect, test } from 'vitest';
import { createRequestTracer } from '../../../../proxy/src/telemetry/tracing.js';
import { FakeTime } from '../../../helpers/fake-time.js';

const settings = { sampler: { name: 'always_on' as const, ratio: 1 }, resource: { 'service.name': 't', 'spiffe.id': 'spiffe://example.org/ns/default/sa/api' } };
const turns = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

describe('tracer shutdown', () => {
  test('a collector that never answers holds the shutdown for shutdownTimeoutMs, not for its own timeout', async () => {
    const time = new FakeTime();
    let exports = 0;
    const exporter: SpanExporter = {
      export: () => {
        exports++; // never calls back: a collector that accepted the connection and went quiet
      },
      shutdown: () => new Promise<void>(() => undefined),
    };
    const tracer = createRequestTracer({ ...settings, exporter, timers: time, shutdownTimeoutMs: 2_000 })!;
    tracer.start('GET', 'outbound', { traceparent: undefined }, {}).end({ 'http.status_code': 200 });
    let done = false;
    void tracer.shutdown().then(() => {
      done = true;
    });
    await turns();
    expect(exports).toBe(1); // the last span was offered to the collector
    time.advance(1_999);
    await turns();
    expect(done).toBe(false);
    time.advance(1);
    await turns();
    expect(done).toBe(true);
  });

  test('a collector that answers: shutdown resolves once the last span is exported, without waiting for the bound', async () => {
    const time = new FakeTime();
    const exported: ReadableSpan[] = [];
    const exporter: SpanExporter = {
      export: (spans, cb) => {
        exported.push(...spans);
        cb({ code: 0 });
      },
      shutdown: () => Promise.resolve(),
    };
    const tracer = createRequestTracer({ ...settings, exporter, timers: time })!;
    tracer.start('GET', 'inbound', { traceparent: undefined }, {}).end({ 'http.status_code': 200 });
    await tracer.shutdown();
    expect(exported.map((s) => s.name)).toEqual(['GET inbound']);
  });
});
