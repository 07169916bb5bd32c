import { describe, expect, test } from 'vitest';
import { normalizeHttpPath, normalizeRequestTarget } from '../../../../common/policy/normalize-path.js';

describe('normalizeHttpPath', () => {
  test.each([
    ['/', '/'],
    ['/v1/items', '/v1/items'],
    ['/v1/items/', '/v1/items/'],
    ['/.well-known/x', '/.well-known/x'],
    ['/a..b/c', '/a..b/c'],
    ['/v1/items?x=1&y=/../admin', '/v1/items'],
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
    ['/a/..b;c/d', '/a/..b;c/d'],
    ['/a/...;x', '/a/...;x'],
    ['/a/...%3bx', '/a/...%3Bx'],
    ['/a/x%3B/..%2e%3Bb', '/a/x%3B/...%3Bb'],
    ['/a%3Bb/c', '/a%3Bb/c'],
    ['/a/..%253B/b', '/a/..%253B/b'],
    ['/a%41b', '/aAb'],
    ['/caf%c3%a9/%E2%82%AC', '/caf%C3%A9/%E2%82%AC'],
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
    // RFC 9112 section 3.2: no fragment in a request target; "/public/x#/../../admin" is "/admin" to an app that
    // cleans the whole string.
    ['/v1/items#frag', 'fragment'],
    ['/public/x#/../../admin', 'fragment hiding a climb'],
    ['/public?q=1#/../admin', 'fragment after a query'],
    ['#', 'bare fragment'],
    ['/v1/items?a=b c', 'space in the query'],
    ['/v1/items?a=\u0001', 'control character in the query'],
    ['/v1/items?caf\u00e9', 'raw non-ASCII in the query'],
    // Servlet containers strip ";" parameters before resolving dot segments: "..;" is ".." to them.
    ['/public/..;/admin', 'parent segment with parameters'],
    ['/public/..;x=1/admin', 'parent segment with a parameter value'],
    ['/public/.;/admin', 'current segment with parameters'],
    ['/public/%2e%2e;/admin', 'encoded parent segment with parameters'],
    ['/public/..;', 'trailing parent segment with parameters'],
    // The same with the ";" escaped: "/public/../admin" to an app that percent-decodes before it strips parameters.
    ['/public/..%3B/admin', 'parent segment with an escaped ";"'],
    ['/public/..%3b/admin', 'parent segment with an escaped ";", lower case'],
    ['/public/%2e%2e%3b/admin', 'escaped parent segment with an escaped ";"'],
    ['/public/%2E.%3Bx=1/admin', 'mixed escapes, a parameter value'],
    ['/public/.%3B/admin', 'current segment with an escaped ";"'],
    ['/public/%2e%3b/admin', 'escaped current segment with an escaped ";"'],
    ['/public/%3Bx/../admin', 'empty segment with an escaped ";"'],
    ['/public/..%3B', 'trailing parent segment with an escaped ";"'],
    ['/public/..;x%3B/admin', 'raw ";" before an escaped one'],
    ['/public/..%3Bx;y/admin', 'escaped ";" before a raw one'],
    // An encoded control character: NUL ends the path in C strings, CR/LF split logs and headers.
    ['/admin%00/public', 'encoded NUL'],
    ['/a%0d%0aX: y', 'encoded CR LF'],
    ['/a%1f', 'encoded unit separator'],
    ['/a%7F', 'encoded DEL'],
    // Escaped bytes that are not UTF-8: a lax decoder reads the overlong "%C0%AE" as ".".
    ['/public/%C0%AE%C0%AE/admin', 'overlong dots'],
    ['/a%C3', 'truncated UTF-8'],
    ['/a%FFb', 'invalid UTF-8 byte'],
    ['/a%80', 'lone continuation byte'],
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

describe('normalizeRequestTarget: what is forwarded is what the policy decided on', () => {
  test.each([
    ['/v1/items', '/v1/items'],
    ['/v1/items?x=1&y=/../admin', '/v1/items?x=1&y=/../admin'],
    ['/v1/../admin?q=%2F', '/admin?q=%2F'],
    ['//admin//users?', '/admin/users?'],
    ['/%61dmin', '/admin'],
    ['/a%3cb?c', '/a%3Cb?c'],
    ['/pkg.Service/Method', '/pkg.Service/Method'],
  ])('%j → %j', (raw, want) => {
    expect(normalizeRequestTarget(raw)).toBe(want);
  });

  test.each(['/public/x#/../../admin', '/a?b#c', '*', 'http://h/admin', '', '/admin%2Fx', '/..;/admin'])('%j is refused', (raw) => {
    expect(normalizeRequestTarget(raw)).toBeNull();
  });

  test('the forwarded path is exactly the policy path, and forwarding it again changes nothing', () => {
    for (const raw of ['/v1/../admin?x', '//x//y/?a=b', '/%61/%2e/b', '/a%3cb', '/a/./b/../c?q=1?2']) {
      const target = normalizeRequestTarget(raw)!;
      const q = target.indexOf('?');
      expect(q < 0 ? target : target.slice(0, q)).toBe(normalizeHttpPath(raw));
      expect(normalizeRequestTarget(target)).toBe(target);
    }
  });
});
