import { describe, expect, test } from 'vitest';
import type { ErrorCode } from '../../../../common/errors.js';
import { SpiffeId } from '../../../../common/spiffe/spiffe-id.js';
import { compileIdPattern } from '../../../../common/spiffe/match.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';

describe('SpiffeId.parse accepts valid IDs', () => {
  test.each([
    ['spiffe://example.org', 'example.org', ''],
    ['spiffe://example.org/ns/default/sa/web', 'example.org', '/ns/default/sa/web'],
    ['spiffe://a-b_c.d9/x', 'a-b_c.d9', '/x'],
    ['spiffe://example.org/AZaz09.-_', 'example.org', '/AZaz09.-_'],
    ['spiffe://example.org/...', 'example.org', '/...'],
    ['spiffe://example.org/.a/..b', 'example.org', '/.a/..b'],
    ['spiffe://1.2.3.4/ip-looking', '1.2.3.4', '/ip-looking'],
  ])('%s', (text, td, path) => {
    const id = SpiffeId.parse(text);
    expect(id.trustDomain.name).toBe(td);
    expect(id.path).toBe(path);
    expect(id.toString()).toBe(text);
  });
});

describe('SpiffeId.parse names the rule each invalid ID breaks', () => {
  const cases: [string, ErrorCode][] = [
    ['', 'TESSERA_ERR_SPIFFE_ID_EMPTY'],
    ['example.org/x', 'TESSERA_ERR_SPIFFE_ID_WRONG_SCHEME'],
    ['SPIFFE://example.org/x', 'TESSERA_ERR_SPIFFE_ID_WRONG_SCHEME'],
    ['https://example.org/x', 'TESSERA_ERR_SPIFFE_ID_WRONG_SCHEME'],
    ['spiffe:/example.org/x', 'TESSERA_ERR_SPIFFE_ID_WRONG_SCHEME'],
    ['spiffe://', 'TESSERA_ERR_SPIFFE_ID_NO_TRUST_DOMAIN'],
    ['spiffe:///path', 'TESSERA_ERR_SPIFFE_ID_NO_TRUST_DOMAIN'],
    ['spiffe://Example.org/x', 'TESSERA_ERR_SPIFFE_ID_BAD_TRUST_DOMAIN_CHAR'],
    ['spiffe://exa mple.org', 'TESSERA_ERR_SPIFFE_ID_BAD_TRUST_DOMAIN_CHAR'],
    ['spiffe://exa%41mple.org', 'TESSERA_ERR_SPIFFE_ID_BAD_TRUST_DOMAIN_CHAR'],
    ['spiffe://user@example.org/x', 'TESSERA_ERR_SPIFFE_ID_USERINFO'],
    ['spiffe://example.org:8443/x', 'TESSERA_ERR_SPIFFE_ID_PORT'],
    ['spiffe://example.org/x?y=1', 'TESSERA_ERR_SPIFFE_ID_QUERY'],
    ['spiffe://example.org?y', 'TESSERA_ERR_SPIFFE_ID_QUERY'],
    ['spiffe://example.org/x#frag', 'TESSERA_ERR_SPIFFE_ID_FRAGMENT'],
    ['spiffe://example.org/', 'TESSERA_ERR_SPIFFE_ID_EMPTY_SEGMENT'],
    ['spiffe://example.org/x/', 'TESSERA_ERR_SPIFFE_ID_EMPTY_SEGMENT'],
    ['spiffe://example.org//x', 'TESSERA_ERR_SPIFFE_ID_EMPTY_SEGMENT'],
    ['spiffe://example.org/./x', 'TESSERA_ERR_SPIFFE_ID_DOT_SEGMENT'],
    ['spiffe://example.org/x/..', 'TESSERA_ERR_SPIFFE_ID_DOT_SEGMENT'],
    ['spiffe://example.org/x%20y', 'TESSERA_ERR_SPIFFE_ID_BAD_PATH_CHAR'],
    ['spiffe://example.org/x y', 'TESSERA_ERR_SPIFFE_ID_BAD_PATH_CHAR'],
    ['spiffe://example.org/caf\u00e9', 'TESSERA_ERR_SPIFFE_ID_BAD_PATH_CHAR'],
    ['spiffe://example.org/a*b', 'TESSERA_ERR_SPIFFE_ID_BAD_PATH_CHAR'],
    [`spiffe://example.org/${'a'.repeat(2040)}`, 'TESSERA_ERR_SPIFFE_ID_TOO_LONG'],
  ];
  test.each(cases)('%s -> %s', (text, code) => {
    const r = SpiffeId.tryParse(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe(code);
  });

  test('2048 bytes is the limit, inclusive', () => {
    const base = 'spiffe://example.org/';
    expect(SpiffeId.parse(base + 'a'.repeat(2048 - base.length)).toString()).toHaveLength(2048);
    expect(SpiffeId.tryParse(base + 'a'.repeat(2049 - base.length)).ok).toBe(false);
  });
});

describe('SpiffeId helpers', () => {
  test('segments, equality and membership', () => {
    const id = SpiffeId.parse('spiffe://example.org/ns/a/sa/b');
    expect(id.segments()).toEqual(['ns', 'a', 'sa', 'b']);
    expect(id.equals(SpiffeId.parse('spiffe://example.org/ns/a/sa/b'))).toBe(true);
    expect(id.memberOf(TrustDomain.parse('example.org'))).toBe(true);
    expect(id.memberOf(TrustDomain.parse('spiffe://other.org'))).toBe(false);
    expect(JSON.stringify({ id })).toBe('{"id":"spiffe://example.org/ns/a/sa/b"}');
  });
  test('fromSegments validates each segment', () => {
    const td = TrustDomain.parse('example.org');
    expect(SpiffeId.fromSegments(td, 'ns', 'default', 'sa', 'api').toString()).toBe('spiffe://example.org/ns/default/sa/api');
    expect(() => SpiffeId.fromSegments(td, 'a/b', '..')).toThrow(/\.\./);
    expect(() => SpiffeId.fromSegments(td, 'ns', '')).toThrowError(expect.objectContaining({ code: 'TESSERA_ERR_SPIFFE_ID_EMPTY_SEGMENT' }));
  });
  test('fromSegments applies parse\'s 2048-byte limit to the whole ID (a 2,100-character service account)', () => {
    const td = TrustDomain.parse('example.org');
    const base = 'spiffe://example.org/ns/default/sa/';
    const fits = 'a'.repeat(2048 - base.length);
    expect(SpiffeId.fromSegments(td, 'ns', 'default', 'sa', fits).toString()).toHaveLength(2048);
    expect(() => SpiffeId.fromSegments(td, 'ns', 'default', 'sa', `${fits}a`)).toThrowError(expect.objectContaining({ code: 'TESSERA_ERR_SPIFFE_ID_TOO_LONG' }));
    expect(() => SpiffeId.fromSegments(td, 'ns', 'default', 'sa', 'a'.repeat(2100))).toThrowError(expect.objectContaining({ code: 'TESSERA_ERR_SPIFFE_ID_TOO_LONG' }));
    // Bytes, not characters, as parse counts them.
    expect(() => SpiffeId.fromSegments(td, 'x', '\u00e9'.repeat(1100))).toThrowError(expect.objectContaining({ code: 'TESSERA_ERR_SPIFFE_ID_TOO_LONG' }));
  });
  test('fromSegments gives the answer parse gives for the same text, and each value is one segment', () => {
    const td = TrustDomain.parse('example.org');
    const cases: string[][] = [['ns', 'default', 'sa', 'api'], ['a'.repeat(2030)], ['a'.repeat(2040)], ['x', ''], ['..'], ['a b'], ['caf\u00e9'], ['x', 'y'.repeat(1000), 'z'.repeat(1100)]];
    for (const segs of cases) {
      const text = `${td.idString()}${segs.map((s) => `/${s}`).join('')}`;
      const parsed = SpiffeId.tryParse(text);
      let built: SpiffeId | undefined;
      let code: string | undefined;
      try {
        built = SpiffeId.fromSegments(td, ...segs);
      } catch (e) {
        code = (e as { code?: string }).code;
      }
      if (parsed.ok) expect(built?.toString(), text.slice(0, 60)).toBe(text);
      else expect(code, text.slice(0, 60)).toBe(parsed.error.code);
    }
    expect(() => SpiffeId.fromSegments(td, 'ns', 'a/b', 'sa', 'web')).toThrowError(expect.objectContaining({ code: 'TESSERA_ERR_SPIFFE_ID_BAD_PATH_CHAR' }));
  });
  test('TrustDomain.parse rejects bad names with the rule', () => {
    expect(() => TrustDomain.parse('')).toThrowError(expect.objectContaining({ code: 'TESSERA_ERR_SPIFFE_ID_NO_TRUST_DOMAIN' }));
    expect(() => TrustDomain.parse('EXAMPLE.org')).toThrowError(expect.objectContaining({ code: 'TESSERA_ERR_SPIFFE_ID_BAD_TRUST_DOMAIN_CHAR' }));
    expect(TrustDomain.parse('spiffe://example.org').idString()).toBe('spiffe://example.org');
  });

  test('a trust domain name is at most 255 bytes, as a bare name, in an ID and in a policy pattern', () => {
    const fits = `${'a'.repeat(251)}.org`;
    expect(TrustDomain.parse(fits).name).toHaveLength(255);
    expect(SpiffeId.parse(`spiffe://${fits}/x`).trustDomain.name).toBe(fits);
    for (const long of [`a${fits}`, 'a'.repeat(100_000)]) {
      const tooLong = expect.objectContaining({ code: 'TESSERA_ERR_SPIFFE_ID_TRUST_DOMAIN_TOO_LONG' });
      expect(() => TrustDomain.parse(long)).toThrowError(tooLong);
      expect(() => TrustDomain.parse(`spiffe://${long}`)).toThrowError(tooLong);
      expect(TrustDomain.tryParse(long)).toBeNull();
      expect(() => compileIdPattern(`spiffe://${long}/**`)).toThrowError(tooLong);
    }
    // In an ID that fits 2048 bytes, the trust domain's own limit applies.
    expect(() => SpiffeId.parse(`spiffe://a${fits}/x`)).toThrowError(expect.objectContaining({ code: 'TESSERA_ERR_SPIFFE_ID_TRUST_DOMAIN_TOO_LONG' }));
  });
});
