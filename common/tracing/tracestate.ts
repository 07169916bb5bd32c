// W3C Trace Context `tracestate`: vendors' entries that ride along a continued trace. Checked whole, as the
// spec's processing model asks: a list that breaks its grammar, repeats a key or has more than 32 members is
// dropped (never passed on half-read), and none is passed on without a valid traceparent beside it.

/** The spec's bound on list members. */
export const MAX_TRACESTATE_MEMBERS = 32;

// key = simple-key / multi-tenant-key; value = 0*255(chr) nblk-chr (chr: 0x20-0x7e without "," and "=").
const SIMPLE_KEY = /^[a-z][a-z0-9_\-*/]{0,255}$/;
const TENANT_KEY = /^[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13}$/;
const VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

/**
 * The tracestate to pass on: `header` (field lines already joined with ",") normalised to `key=value` members
 * joined by ",", or undefined when it is absent, empty or invalid as a whole.
 */
export function parseTracestate(header: string | undefined | null): string | undefined {
  if (!header) return undefined;
  const members: string[] = [];
  const keys = new Set<string>();
  for (const raw of header.split(',')) {
    const m = raw.replace(/^[ \t]+|[ \t]+$/g, '');
    // Empty members (",,") are allowed and carry nothing.
    if (m === '') continue;
    const eq = m.indexOf('=');
    if (eq <= 0) return undefined;
    const key = m.slice(0, eq);
    const value = m.slice(eq + 1);
    if (!(SIMPLE_KEY.test(key) || TENANT_KEY.test(key)) || !VALUE.test(value) || keys.has(key)) return undefined;
    keys.add(key);
    members.push(m);
    if (members.length > MAX_TRACESTATE_MEMBERS) return undefined;
  }
  return members.length > 0 ? members.join(',') : undefined;
}
