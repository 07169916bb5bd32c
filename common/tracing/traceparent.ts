// W3C Trace Context `traceparent` parsing and formatting (version 00), strict so a malformed header is dropped.

export interface TraceParent {
  readonly traceId: string;
  readonly parentId: string;
  /** Bit 0 = sampled. */
  readonly flags: number;
}

// version "-" trace-id "-" parent-id "-" flags, lower-case hex; versions after 00 may append "-" and more fields.
// One match instead of a split and a test per field: it runs on every request that carries a traceparent.
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[\s\S]*)?$/;
const ZERO32 = '0'.repeat(32);
const ZERO16 = '0'.repeat(16);

export function parseTraceparent(header: string | undefined | null): TraceParent | null {
  if (!header) return null;
  const m = TRACEPARENT.exec(header.trim());
  if (m === null) return null;
  const [, version, traceId, parentId, flags, rest] = m as unknown as [string, string, string, string, string, string | undefined];
  if (version === 'ff') return null;
  // Version 00 has exactly four fields; later versions may append more (forward compatible).
  if (version === '00' && rest !== undefined) return null;
  if (traceId === ZERO32 || parentId === ZERO16) return null;
  return { traceId, parentId, flags: Number.parseInt(flags, 16) };
}

export function formatTraceparent(tp: TraceParent): string {
  return `00-${tp.traceId}-${tp.parentId}-${(tp.flags & 0xff).toString(16).padStart(2, '0')}`;
}
