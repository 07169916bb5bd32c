// What happens to every sampled span, counted: taken by the collector, lost in an export it refused or never
// answered, or dropped because the export queue was full. The SDK's batch processor drops and fails silently (a
// debug line nobody sees), so the queue bound is kept here, in front of it, and each export's result is read.
import type { Context } from '@opentelemetry/api';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import type { ReadableSpan, Span, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base';

export type SpanOutcome = 'exported' | 'export_failed' | 'queue_full';

/** Told of every span's outcome, a batch at a time; `error` with an export that failed. */
export type SpanOutcomes = (outcome: SpanOutcome, spans: number, error?: Error) => void;

/** An exporter that reports each batch's result, then hands it on unchanged. */
export class ReportingExporter implements SpanExporter {
  readonly #inner: SpanExporter;
  readonly #report: SpanOutcomes;
  readonly #settled: (spans: number) => void;

  constructor(inner: SpanExporter, report: SpanOutcomes, settled: (spans: number) => void) {
    this.#inner = inner;
    this.#report = report;
    this.#settled = settled;
  }

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.#inner.export(spans, (result) => {
      this.#settled(spans.length);
      if (result.code === ExportResultCode.SUCCESS) this.#report('exported', spans.length);
      else this.#report('export_failed', spans.length, result.error);
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.#inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.#inner.forceFlush?.() ?? Promise.resolve();
  }
}

/**
 * At most `max` spans between their end and their export's result; past that a span is dropped and reported.
 * The batch processor behind it is given room for more, so it never drops one uncounted.
 */
export class BoundedSpanQueue implements SpanProcessor {
  readonly #inner: SpanProcessor;
  readonly #max: number;
  readonly #report: SpanOutcomes;
  #pending = 0;

  constructor(inner: SpanProcessor, max: number, report: SpanOutcomes) {
    this.#inner = inner;
    this.#max = max;
    this.#report = report;
  }

  /** Spans whose export reported back (taken or lost): their room is free again. */
  settled(spans: number): void {
    this.#pending = Math.max(0, this.#pending - spans);
  }

  onStart(span: Span, parent: Context): void {
    this.#inner.onStart(span, parent);
  }

  onEnd(span: ReadableSpan): void {
    if (this.#pending >= this.#max) return void this.#report('queue_full', 1);
    this.#pending++;
    this.#inner.onEnd(span);
  }

  forceFlush(): Promise<void> {
    return this.#inner.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.#inner.shutdown();
  }
}
