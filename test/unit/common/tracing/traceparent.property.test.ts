// Property of the traceparent parser (a header any caller sends): on generated headers, right, nearly right and
// wrong, it accepts exactly what a field-by-field reading of W3C Trace Context accepts, with the same values.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { parseTraceparent } from '../../../../common/tracing/traceparent.js';
import { fuzzParams } from '../../../helpers/fuzz-params.js';

/** The field-by-field reading of the spec (a split on "-", then each field checked): the reference for the parser. */
function splitReference(header: string | undefined): { traceId: string; parentId: string; flags: number } | null {
  if (!header) return null;
  const parts = header.trim().split('-');
  if (parts.length < 4) return null;
  const [version, traceId, parentId, flags] = parts as [string, string, string, string];
  if (!/^[0-9a-f]{2}$/.test(version) || version === 'ff') return null;
  if (version === '00' && parts.length !== 4) return null;
  if (!/^[0-9a-f]{32}$/.test(traceId) || traceId === '0'.repeat(32)) return null;
  if (!/^[0-9a-f]{16}$/.test(parentId) || parentId === '0'.repeat(16)) return null;
  if (!/^[0-9a-f]{2}$/.test(flags)) return null;
  return { traceId, parentId, flags: Number.parseInt(flags, 16) };
}

describe('traceparent, generated headers', () => {
  test('parses exactly what the field-by-field reading accepts, to the same values', () => {
    const hexOf = (n: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`));
    // Fields that are right, nearly right (a digit short or over, upper case, zeros) or wrong.
    const field = (n: number) => fc.oneof(hexOf(n), hexOf(n - 1), hexOf(n + 1), hexOf(n).map((h) => h.toUpperCase()), fc.constant('0'.repeat(n)), fc.string({ maxLength: 3 }));
    const version = fc.oneof(fc.constantFrom('00', '01', 'cc', 'fe', 'ff', '0', '000', 'G0'), hexOf(2));
    const extra = fc.oneof(fc.constant(''), fc.constant('-'), fc.constant('-x'), fc.constant('-\nx'), fc.string({ maxLength: 4 }).map((x) => `-${x}`), fc.string({ maxLength: 2 }));
    const space = fc.constantFrom('', ' ', '\t', '\n', ' \u00a0');
    const header = fc.tuple(space, version, field(32), field(16), field(2), extra, space).map(([a, v, t, p, f, x, b]) => `${a}${v}-${t}-${p}-${f}${x}${b}`);
    fc.assert(
      fc.property(fc.oneof(header, fc.string({ maxLength: 60 })), (h) => {
        expect(parseTraceparent(h)).toEqual(splitReference(h));
      }),
      fuzzParams(0x7a9e, 4000),
    );
  });
});
