// tracestate as the W3C Trace Context test suite reads it: valid lists pass (normalised), an invalid member, a
// repeated key or more than 32 members drop the whole header.
import { describe, expect, test } from 'vitest';
import { MAX_TRACESTATE_MEMBERS, parseTracestate } from '../../../../common/tracing/tracestate.js';

describe('parseTracestate', () => {
  test('valid lists: simple and multi-tenant keys, OWS and empty members around them', () => {
    expect(parseTracestate('congo=t61rcWkgMzE')).toBe('congo=t61rcWkgMzE');
    expect(parseTracestate(' rojo=00f067aa0ba902b7 ,, congo=t61rcWkgMzE\t')).toBe('rojo=00f067aa0ba902b7,congo=t61rcWkgMzE');
    expect(parseTracestate('tenant@vendor=x,a-b_c*d/e=v w')).toBe('tenant@vendor=x,a-b_c*d/e=v w');
    const max = Array.from({ length: MAX_TRACESTATE_MEMBERS }, (_, i) => `k${i}=v`).join(',');
    expect(parseTracestate(max)).toBe(max);
  });

  test('absent or empty: undefined', () => {
    for (const v of [undefined, null, '', ' ', ',,', ' , ']) expect(parseTracestate(v), String(v)).toBeUndefined();
  });

  test('the whole header is dropped for one bad member, a repeated key or too many members', () => {
    const cases = [
      'Congo=x', // upper-case key
      '1abc=x', // simple key starting with a digit
      `${'a'.repeat(257)}=x`, // key too long
      'a@B=x', // upper-case system id
      'a@vendorvendorvend=x', // system id over 14 characters
      'congo', // no "="
      '=x', // no key
      'congo=', // empty value
      'congo=a=b', // "=" in the value
      'congo=a\x01b', // control character
      'congo=é', // non-ASCII
      `congo=${'x'.repeat(257)}`, // value too long
      'congo=a,congo=b', // repeated key
      Array.from({ length: MAX_TRACESTATE_MEMBERS + 1 }, (_, i) => `k${i}=v`).join(','),
    ];
    for (const v of cases) expect(parseTracestate(v), JSON.stringify(v)).toBeUndefined();
    // Spaces after a value are the list's optional whitespace, not part of it.
    expect(parseTracestate('congo=x ')).toBe('congo=x');
  });
});
