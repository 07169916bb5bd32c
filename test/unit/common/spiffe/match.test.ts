import { describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { SpiffeId } from '../../../../common/spiffe/spiffe-id.js';
import { compileIdPattern, compilePathPattern } from '../../../../common/spiffe/match.js';

const id = (s: string) => SpiffeId.parse(s);

describe('ID patterns', () => {
  test.each([
    ['spiffe://td/ns/a/sa/web', 'spiffe://td/ns/a/sa/web', true],
    ['spiffe://td/ns/a/sa/web', 'spiffe://td/ns/a/sa/api', false],
    ['spiffe://td/ns/*/sa/web', 'spiffe://td/ns/b/sa/web', true],
    ['spiffe://td/ns/*/sa/web', 'spiffe://td/ns/b/c/sa/web', false],
    ['spiffe://td/ns/batch/sa/*', 'spiffe://td/ns/batch/sa/x', true],
    ['spiffe://td/ns/batch/sa/*', 'spiffe://td/ns/batch/sa', false],
    ['spiffe://td/ns/batch/**', 'spiffe://td/ns/batch/sa/x', true],
    ['spiffe://td/ns/batch/**', 'spiffe://td/ns/batch', false],
    ['spiffe://td/**', 'spiffe://td/anything/at/all', true],
    ['spiffe://td/**', 'spiffe://other/anything', false],
    ['spiffe://td/*', 'spiffe://td/a', true],
    ['spiffe://td', 'spiffe://td', true],
    ['spiffe://td', 'spiffe://td/a', false],
  ])('%s vs %s -> %s', (pattern, candidate, want) => {
    expect(compileIdPattern(pattern).matches(id(candidate))).toBe(want);
  });

  test.each(['spiffe://td/a*', 'spiffe://td/**/x', 'spiffe://*/x', 'td/x', 'spiffe://td/a/../b', 'spiffe://TD/x'])(
    'rejects malformed pattern %s',
    (p) => expect(() => compileIdPattern(p)).toThrow(),
  );

  test('the 2048-byte limit of SPIFFE-ID §2.3 applies to patterns: one no valid ID can match is TESSERA_ERR_SPIFFE_ID_TOO_LONG', () => {
    const code = (p: string) => {
      try {
        compileIdPattern(p);
        return 'ok';
      } catch (e) {
        return isTesseraError(e) ? e.code : String(e);
      }
    };
    const pad = (prefix: string, bytes: number, suffix = '') => `${prefix}${'a'.repeat(bytes - prefix.length - suffix.length)}${suffix}`;
    expect(code(pad('spiffe://td/', 2048))).toBe('ok');
    expect(compileIdPattern(pad('spiffe://td/', 2048)).matches(id(pad('spiffe://td/', 2048)))).toBe(true);
    expect(code(pad('spiffe://td/', 2049))).toBe('TESSERA_ERR_SPIFFE_ID_TOO_LONG');
    expect(code(pad('spiffe://td/', 2049, '/*'))).toBe('TESSERA_ERR_SPIFFE_ID_TOO_LONG');
    // A final "**" stands for one segment at least ("/x" for "/**"): 2049 bytes still match a 2048-byte ID.
    const rest = pad('spiffe://td/', 2049, '/**');
    expect(code(rest)).toBe('ok');
    expect(compileIdPattern(rest).matches(id(`${rest.slice(0, -2)}b`))).toBe(true);
    expect(code(pad('spiffe://td/', 2050, '/**'))).toBe('TESSERA_ERR_SPIFFE_ID_TOO_LONG');
  });

  test('a pattern is refused with the code an ID gets for the same fault; PATTERN is for the wildcards only (audit 51a F7)', () => {
    const code = (f: () => unknown) => {
      try {
        f();
        return 'ok';
      } catch (e) {
        return isTesseraError(e) ? e.code : String(e);
      }
    };
    const faults = [
      '',
      'spiffe:/example.org/x',
      'SPIFFE://example.org/x',
      'spiffe://',
      'spiffe:///path',
      'spiffe://Example.org/x',
      'spiffe://user@example.org/x',
      'spiffe://example.org:8443/x',
      'spiffe://example.org/x?y=1',
      'spiffe://example.org?y',
      'spiffe://example.org/x#frag',
      'spiffe://example.org/x#a?b',
      'spiffe://example.org/x?a#b',
      'spiffe://example.org/',
      'spiffe://example.org//x',
      'spiffe://example.org/./x',
      'spiffe://example.org/x%20y',
      'spiffe://example.org/caf\u00e9',
      `spiffe://example.org/${'a'.repeat(2040)}`,
    ];
    for (const text of faults) {
      const want = code(() => SpiffeId.parse(text));
      expect(want, text).toMatch(/^TESSERA_ERR_SPIFFE_ID_/);
      expect(code(() => compileIdPattern(text)), text).toBe(want);
      // The same fault next to a wildcard is still that fault.
      if (text.startsWith('spiffe://example.org/')) expect(code(() => compileIdPattern(text.replace('example.org/', 'example.org/*/'))), text).toBe(want);
    }
    expect(code(() => compileIdPattern('spiffe://example.org/a*b'))).toBe('TESSERA_ERR_SPIFFE_ID_PATTERN');
    expect(code(() => compileIdPattern('spiffe://example.org/**/x'))).toBe('TESSERA_ERR_SPIFFE_ID_PATTERN');
  });

  test('exact flag', () => {
    expect(compileIdPattern('spiffe://td/a').exact).toBe(true);
    expect(compileIdPattern('spiffe://td/*').exact).toBe(false);
  });
});

describe('path patterns', () => {
  test.each([
    ['/v1/*', '/v1/users', true],
    ['/v1/*', '/v1/users/1', false],
    ['/v1/*', '/v1/users?x=1', true],
    ['/v1/**', '/v1/users/1', true],
    ['/v1/**', '/v1', false],
    ['/healthz', '/healthz', true],
    ['/healthz', '/healthz/', false],
    ['/', '/', true],
    ['/**', '/anything', true],
  ])('%s vs %s -> %s', (p, path, want) => expect(compilePathPattern(p).matches(path)).toBe(want));
  test('rejects relative or mid-wildcards', () => {
    expect(() => compilePathPattern('v1/*')).toThrow();
    expect(() => compilePathPattern('/v1/x*')).toThrow();
  });
});
