// Lost spans made visible: every sampled span's outcome counted on /metrics, and the operational log told once
// when spans start being lost (an export refused or unanswered, a full queue) and once when exports work again,
// not per batch: a collector down for an hour is two lines, not thousands.
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { SpanOutcome, SpanOutcomes } from './span-accounting.js';

/** Describes an export error without the collector's URL (it may carry credentials) or its body. */
function describe(error: Error | undefined): string {
  if (!error) return 'failed';
  const status = (error as { code?: unknown }).code;
  return typeof status === 'number' || typeof status === 'string' ? `${error.name}: ${String(status)}` : error.name;
}

export function reportSpanOutcomes(registry: Registry, log: Pick<Logger, 'warn' | 'info'>): SpanOutcomes {
  const counter = new Counter({
    name: 'tessera_trace_spans_total',
    help: 'Sampled spans by outcome: exported (the collector took them), export_failed (refused, unanswered or unreachable), queue_full (dropped before export).',
    labelNames: ['outcome'],
    registers: [registry],
  });
  for (const o of ['exported', 'export_failed', 'queue_full'] satisfies SpanOutcome[]) counter.inc({ outcome: o }, 0);
  let losing = false;
  let lost = 0;
  return (outcome, spans, error) => {
    counter.inc({ outcome }, spans);
    if (outcome === 'exported') {
      if (losing) log.info({ lost }, 'span exports work again');
      losing = false;
      lost = 0;
      return;
    }
    lost += spans;
    if (losing) return;
    losing = true;
    log.warn({ outcome, spans, reason: outcome === 'queue_full' ? 'the export queue is full' : describe(error) }, 'spans are being lost: the OTLP collector does not take them (counted in tessera_trace_spans_total)');
  };
}
