// The proxy's deny-list matcher: exact SPIFFE IDs (no pattern, no prefix, no case folding) and serials in any
// hex spelling; an immutable snapshot, and a holder that tells listeners only about real changes.
import { describe, expect, test } from 'vitest';
import { DenyListHolder } from '../../../../proxy/src/tls/deny-list-holder.js';
import { EMPTY_DENY_LIST, createDenyList, deniedBy, sameDenyList } from '../../../../proxy/src/tls/deny-list.js';

const WEB = 'spiffe://example.org/ns/default/sa/web';
const peer = (idText: string, serial = '7F0102') => ({ idText, serial });

describe('deniedBy', () => {
  const list = createDenyList([WEB], ['0a:11', '00FF']);

  test('a banned SPIFFE ID is refused whatever its serial', () => {
    expect(deniedBy(list, peer(WEB))).toBe('spiffe_id');
  });

  test('a banned serial is refused whatever the ID, in the spelling node:crypto prints', () => {
    expect(deniedBy(list, peer('spiffe://example.org/ns/default/sa/api', '0A11'))).toBe('serial');
    expect(deniedBy(list, peer('spiffe://example.org/ns/default/sa/api', 'FF'))).toBe('serial');
  });

  test.each([
    ['a longer ID under the banned one', `${WEB}/x`],
    ['a prefix of the banned ID', 'spiffe://example.org/ns/default/sa/we'],
    ['another trust domain, same path', 'spiffe://example.com/ns/default/sa/web'],
    ['an upper-case variant (IDs are case-sensitive)', 'spiffe://example.org/ns/default/sa/WEB'],
    ['a wildcard-looking ID', 'spiffe://example.org/ns/default/sa/*'],
  ])('not refused: %s', (_what, id) => {
    expect(deniedBy(list, peer(id))).toBeNull();
  });

  test('a serial that merely contains a banned one is not refused', () => {
    expect(deniedBy(list, peer('spiffe://example.org/ns/x/sa/y', '0A1100'))).toBeNull();
    expect(deniedBy(list, peer('spiffe://example.org/ns/x/sa/y', '11'))).toBeNull();
  });

  test('the empty list refuses nobody', () => {
    expect(deniedBy(EMPTY_DENY_LIST, peer(WEB))).toBeNull();
    expect(createDenyList([], [])).toBe(EMPTY_DENY_LIST);
  });

  test('the snapshot is immutable', () => {
    expect(Object.isFrozen(list)).toBe(true);
    expect(() => {
      (list as { spiffeIds: unknown }).spiffeIds = new Set();
    }).toThrow();
  });

  test('malformed serials from a snapshot match nothing and do not break the rest', () => {
    const l = createDenyList([], ['not-hex', '', '0a11']);
    expect([...l.serials]).toEqual(['0a11']);
  });
});

describe('DenyListHolder', () => {
  test('listeners hear about a new list, not about the same list again', () => {
    const holder = new DenyListHolder();
    const heard: number[] = [];
    const off = holder.subscribe((l) => heard.push(l.spiffeIds.size + l.serials.size));
    holder.set(createDenyList([WEB], []));
    holder.set(createDenyList([WEB], []));
    holder.set(createDenyList([WEB], ['01']));
    holder.set(EMPTY_DENY_LIST);
    off();
    holder.set(createDenyList([WEB], []));
    expect(heard).toEqual([1, 2, 0]);
    expect(deniedBy(holder.current, peer(WEB))).toBe('spiffe_id');
  });

  test('sameDenyList compares content', () => {
    expect(sameDenyList(createDenyList([WEB], ['01']), createDenyList([WEB], ['0001']))).toBe(true);
    expect(sameDenyList(createDenyList([WEB], []), createDenyList([`${WEB}2`], []))).toBe(false);
    expect(sameDenyList(createDenyList([], ['01']), createDenyList([], ['02']))).toBe(false);
  });
});
