import { describe, expect, test } from 'vitest';
import { formatTraceparent, parseTraceparent } from '../../../../common/tracing/traceparent.js';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const P = '00f067aa0ba902b7';

describe('traceparent', () => {
  test('round-trips a valid header', () => {
    const tp = parseTraceparent(`00-${T}-${P}-01`);
    expect(tp).toEqual({ traceId: T, parentId: P, flags: 1 });
    expect(formatTraceparent(tp!)).toBe(`00-${T}-${P}-01`);
  });
  test('accepts later versions with extra fields', () => expect(parseTraceparent(`01-${T}-${P}-00-extra`)?.traceId).toBe(T));
  test.each([
    undefined, '', 'garbage', `ff-${T}-${P}-01`, `00-${T.toUpperCase()}-${P}-01`, `00-${'0'.repeat(32)}-${P}-01`,
    `00-${T}-${'0'.repeat(16)}-01`, `00-${T}-${P}-1`, `00-${T}-${P}-01-extra`, `00-${T.slice(1)}-${P}-01`,
  ])('rejects %j', (h) => expect(parseTraceparent(h)).toBeNull());
});
