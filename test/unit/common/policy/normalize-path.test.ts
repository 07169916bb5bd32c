import { describe, expect, test } from 'vitest';
import { normalizeHttpPath } from '../../../../common/policy/normalize-path.js';

describe('normalizeHttpPath', () => {
  test.each([
    ['/', '/'],
    ['/v1/items', '/v1/items'],
    ['/v1/items/', '/v1/items/'],
    ['/.well-known/x', '/.well-known/x'],
    ['/a..b/c', '/a..b/c'],
    ['/v1/items?x=1&y=/../admin', '/v1/items'],
    ['/v1/items#frag', '/v1/items'],
    ['//admin//users', '/admin/users'],
    ['/./admin', '/admin'],
    ['/v1/../admin', '/admin'],
    ['/v1/./x/../../admin/', '/admin/'],
    ['/a/b/.', '/a/b/'],
    ['/a/b/..', '/a/'],
    ['/a/..', '/'],
    ['/%61dmin', '/admin'],
    ['/v1/%2e%2e/admin', '/admin'],
    ['/v1/%2E%2E/admin', '/admin'],
    ['/%7e/%7E', '/~/~'],
    ['/a%20b', '/a%20b'],
    ['/a%3cb', '/a%3Cb'],
    ['/a%25%32%46', '/a%252F'],
    ['/a;b=c/d', '/a;b=c/d'],
  ])('%j → %j', (raw, want) => {
    expect(normalizeHttpPath(raw)).toBe(want);
  });
  test.each([
    ['', 'empty'],
    ['admin', 'no leading slash'],
    ['*', 'asterisk form'],
    ['http://h/admin', 'absolute form'],
    ['/..', 'climbs above the root'],
    ['/a/../..', 'climbs above the root'],
    ['/%2e%2e/admin', 'encoded climb above the root'],
    ['/admin%2Fusers', 'encoded slash'],
    ['/admin%2fusers', 'encoded slash, lower case'],
    ['/admin%5Cusers', 'encoded backslash'],
    ['/admin\\users', 'raw backslash'],
    ['/a%zz', 'bad escape'],
    ['/a%4', 'truncated escape'],
    ['/a b', 'space'],
    ['/a\u0000b', 'NUL'],
    ['/caf\u00e9', 'raw non-ASCII'],
  ])('%j is refused (%s)', (raw) => {
    expect(normalizeHttpPath(raw)).toBeNull();
  });
  test('a normalized path normalizes to itself', () => {
    for (const p of ['/v1/../admin', '//x//y/', '/%61/%2e/b', '/a%3cb']) {
      const once = normalizeHttpPath(p)!;
      expect(normalizeHttpPath(once)).toBe(once);
    }
  });
});
