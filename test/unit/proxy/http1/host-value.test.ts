// The Host grammar (RFC 9112 section 3.2, RFC 3986 section 3.2.2): uri-host [":" port], nothing else. The refused
// values are the families outside audits sent through to the app: a path, a query or fragment, userinfo, a second
// host, a port out of range or with a sign, stray bytes (23b); sub-delims, a list once in X-Forwarded-Host (24a).
import { expect, test } from 'vitest';
import { isValidHostValue } from '../../../../proxy/src/http1/host-value.js';

test('host names, IPv4 and bracketed IPv6 addresses, with or without a port, are valid; so is the empty value', () => {
  for (const v of ['a.example.test', 'A.Example.TEST', 'a.example.test:443', 'a.example.test:', 'svc_1.ns', 'x', '127.0.0.1', '127.0.0.1:8080', '[::1]', '[::1]:80', '[2001:db8::1]:65535', 'a~b.test', ''])
    expect(isValidHostValue(v), v).toBe(true);
});

test('paths, queries, fragments, userinfo, lists, bad ports and stray bytes are not', () => {
  const bad = [
    'a.example.test:443/admin?',
    'a.example.test:/admin#',
    'a.example.test/x',
    'a.example.test\\admin',
    'a.example.test?x',
    'a.example.test#x',
    'a.example.test:1@evil.test',
    'user@a.example.test',
    'a.example.test, evil.test',
    'a.example.test,evil.test',
    'a.example.test;x=1',
    "a!$&'()*+=b",
    'a.example.test:443 evil',
    'a.example.test:99999',
    'a.example.test:65536',
    'a.example.test:+443',
    'a.example.test:0x1bb',
    'a.example.test:123456',
    'a:b:c',
    ':80',
    '[::1',
    '[zz::1]',
    '[::1]x',
    '[::1]:80:81',
    '[v1.x]',
    '[fe80::1%25eth0]',
    'a%2Fadmin',
    'a\tb',
    'a\u0000b',
    'a\u00e9.test',
  ];
  for (const v of bad) expect(isValidHostValue(v), JSON.stringify(v)).toBe(false);
});
