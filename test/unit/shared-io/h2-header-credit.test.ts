// What a header block earns toward an HTTP/2 client's control-traffic budget (shared-io/h2-header-credit.ts, audit
// 53a F3): a field is credited as the bytes it took on the wire at least, so a value the client can name again by
// an HPACK index earns nothing the second time, while never-indexed fields and fields too large for the table,
// literal on the wire each time, earn their value every time.
import { expect, test } from 'vitest';
import { HPACK_TABLE_BYTES, HeaderCredit } from '../../../shared-io/h2-header-credit.js';

const BIG = 'v'.repeat(3_900);

test('a field is credited once: name and value the first time, nothing when it comes again', () => {
  const c = new HeaderCredit();
  expect(c.block(['x-big', BIG], [])).toBe(5 + 3_900);
  expect(c.block(['x-big', BIG, 'x-big', BIG, 'x-big', BIG], [])).toBe(0);
});

test('a known name with a new value earns the value only (a literal naming the table entry for its name)', () => {
  const c = new HeaderCredit();
  c.block(['x-long-name', 'a'], []);
  expect(c.block(['x-long-name', 'bb'], [])).toBe(2);
  expect(c.block(['x-long-name', 'a'], [])).toBe(0);
});

test('never-indexed fields are literal on the wire every time: their value is always credited', () => {
  const c = new HeaderCredit();
  const token = `Bearer ${'t'.repeat(1_200)}`;
  expect(c.block(['authorization', token], ['authorization'])).toBe(13 + token.length);
  expect(c.block(['authorization', token], ['authorization'])).toBe(token.length);
});

test('a field larger than the HPACK table cannot be indexed: always credited', () => {
  const c = new HeaderCredit();
  const huge = 'h'.repeat(HPACK_TABLE_BYTES);
  expect(c.block(['x-huge', huge], [])).toBe(6 + huge.length);
  expect(c.block(['x-huge', huge], [])).toBe(huge.length);
});

test('a field pushed out of the model (twice the table) by newer ones is credited again', () => {
  const c = new HeaderCredit();
  c.block(['x-big', BIG], []);
  expect(c.block(['x-a', 'a'.repeat(3_000), 'x-b', 'b'.repeat(3_000)], [])).toBe(6_006);
  // 3.9 + 3 + 3 KB (and their names) is past 8 KiB: x-big, name and value, left the model as it left any 4 KiB table.
  expect(c.block(['x-big', BIG], [])).toBe(5 + 3_900);
  // Oldest first: x-b, newer than x-big, is still there.
  expect(c.block(['x-b', 'b'.repeat(3_000)], [])).toBe(0);
});

test('no fields, no credit', () => {
  expect(new HeaderCredit().block(undefined, undefined)).toBe(0);
  expect(new HeaderCredit().block([], undefined)).toBe(0);
});
