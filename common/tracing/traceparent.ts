// W3C Trace Context `traceparent` parsing and formatting (version 00), strict so a malformed header is dropped.

export interface TraceParent {
  readonly traceId: string;
  readonly parentId: string;
  /** Bit 0 = sampled. */
  readonly flags: number;
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const ZERO32 = '0'.repeat(32);
const ZERO16 = '0'.repeat(16);

export function parseTraceparent(header: string | undefined | null): TraceParent | null {
  if (!header) return null;
  const parts = header.trim().split('-');
  if (parts.length < 4) return null;
  const [version, traceId, parentId, flags] = parts as [string, string, string, string];
  if (!/^[0-9a-f]{2}$/.test(version) || version === 'ff') return null;
  // Version 00 has exactly four fields; later versions may append more (forward compatible).
  if (version === '00' && parts.length !== 4) return null;
  if (!HEX32.test(traceId) || traceId === ZERO32) return null;
  if (!HEX16.test(parentId) || parentId === ZERO16) return null;
  if (!/^[0-9a-f]{2}$/.test(flags)) return null;
  return { traceId, parentId, flags: Number.parseInt(flags, 16) };
}

export function formatTraceparent(tp: TraceParent): string {
  return `00-${tp.traceId}-${tp.parentId}-${(tp.flags & 0xff).toString(16).padStart(2, '0')}`;
}
