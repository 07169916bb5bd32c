// The trace-context fields a traced request is sent on with: the span's traceparent and, when the caller's trace
// is continued, its checked tracestate. Kept apart from tracing.ts, which loads the OpenTelemetry SDK: every
// listener imports this, tracing or not.
import { type HttpHead, joinedHeaderValue } from '../http1/http1-head.js';
import type { IncomingTrace, RequestSpan } from './tracing.js';

/** The caller's fields a traced request never passes on as sent: the span's replace them. */
export const TRACE_FIELDS: readonly string[] = ['traceparent', 'tracestate'];

/** An HTTP/1.1 request's trace context, each field's lines joined. */
export function incomingTraceOf(head: HttpHead): IncomingTrace {
  return { traceparent: joinedHeaderValue(head, 'traceparent'), tracestate: joinedHeaderValue(head, 'tracestate') };
}

/** HTTP/1.1 field lines for the span's context. */
export function traceLines(span: RequestSpan): string {
  return span.tracestate === undefined ? `traceparent: ${span.traceparent}\r\n` : `traceparent: ${span.traceparent}\r\ntracestate: ${span.tracestate}\r\n`;
}

/** HTTP/2 fields for the span's context. */
export function traceFields(span: RequestSpan): Record<string, string> {
  return span.tracestate === undefined ? { traceparent: span.traceparent } : { traceparent: span.traceparent, tracestate: span.tracestate };
}
