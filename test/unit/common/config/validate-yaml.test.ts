import { describe, expect, test } from 'vitest';
import type { ObjectSchema } from '../../../../common/config/schema.js';
import { keyText, lineOf, parseAddress, parseYamlConfig } from '../../../../common/config/validate-yaml.js';
import { MAX_CONFIG_DEPTH } from '../../../../common/config/yaml-depth.js';
import { hasControlCharacters } from '../../../../common/text/control-characters.js';

const schema: ObjectSchema = {
  type: 'object',
  properties: {
    trustDomain: { type: 'string', required: true },
    listen: { type: 'string', format: 'address', default: '127.0.0.1:8443' },
    svid: { type: 'object', properties: { ttl: { type: 'duration', default: '1h' }, backdate: { type: 'duration' } } },
    mode: { type: 'string', enum: ['enforce', 'audit'] },
    id: { type: 'string', format: 'spiffe-id' },
    endpoint: { type: 'string', format: 'url' },
    ports: { type: 'array', items: { type: 'number', integer: true, min: 1, max: 65535 } },
    identity: {
      type: 'object',
      properties: { files: { type: 'object', properties: {} }, controlPlane: { type: 'object', properties: {} } },
      exactlyOneOf: [['files', 'controlPlane']],
    },
  },
};


/** The coded refusal of `text` by parseYamlConfig against the schema above. */
function refusal(text: string): { code: string; message: string; line: number } {
  try {
    parseYamlConfig(text, 'p.yaml', schema);
  } catch (e) {
    return { code: (e as { code: string }).code, message: (e as Error).message, line: (e as { details: { line: number } }).details.line };
  }
  throw new Error('accepted');
}
describe('parseYamlConfig', () => {
  test('valid input: defaults, durations in ms, frozen', () => {
    const r = parseYamlConfig<{ svid: unknown }>('trustDomain: example.org\nsvid: { backdate: 60s }\nports: [1, 2]\n', 'cp.yaml', schema);
    expect(r.value).toEqual({ trustDomain: 'example.org', listen: '127.0.0.1:8443', svid: { backdate: 60_000, ttl: 3_600_000 }, ports: [1, 2] });
    expect(Object.isFrozen(r.value.svid)).toBe(true);
    expect(lineOf(r, ['ports', 1])).toBe(3);
  });
  test('unknown key names the key, the file and the line', () => {
    expect(() => parseYamlConfig('trustDomain: x\nsvid:\n  tll: 1h\n', 'cp.yaml', schema)).toThrowError(
      expect.objectContaining({ code: 'TESSERA_ERR_CONFIG_INVALID', message: expect.stringMatching(/^cp\.yaml:3:3: svid\.tll: unknown key "tll"/) }),
    );
  });
  test.each([
    ['listen: nowhere\n', /cp\.yaml:2:\d+: listen: "nowhere" is not a host:port/],
    // The catalogue's code in the line, as a flag's line has it (audit 59a F2).
    ['svid: { ttl: soon }\n', /svid\.ttl: "soon" is not a duration \(TESSERA_ERR_CONFIG_BAD_DURATION: use e\.g\. 500ms, 60s, 15m, 1h30m\)/],
    ['mode: block\n', /mode: must be one of enforce, audit/],
    ['id: spiffe://Bad/x\n', /id: "spiffe:\/\/Bad\/x" is not a SPIFFE ID/],
    ['ports: [0]\n', /ports\[0\]: must be >= 1/],
    // A URL key is an HTTP endpoint: another scheme is refused at start, not found silent later (an outside audit).
    ['endpoint: ftp://127.0.0.1/v1/traces\n', /cp\.yaml:2:\d+: endpoint: "ftp:\/\/127\.0\.0\.1\/v1\/traces" is not an http\(s\) URL/],
    ['endpoint: file:///tmp/x\n', /endpoint: "file:\/\/\/tmp\/x" is not an http\(s\) URL/],
    ['endpoint: "ftp://user:s3cret@h/"\n', /endpoint: "ftp:\/\/(?!.*s3cret).*" is not an http\(s\) URL/],
    ['endpoint: not a url\n', /endpoint: "not a url" is not a URL/],
    // Nor one the parser would repair into another URL, or port 0 (audit 38b, F8): the same rule as the annotation.
    ['endpoint: "http://x:4318/v1/traces\\nadmin: 1"\n', /endpoint: "http:\/\/x:4318\/v1\/traces\\x0aadmin: 1" holds U\+000A .* at offset 23/],
    ['endpoint: "http://x:4318/v1/ traces"\n', /endpoint: ".*" holds U\+0020/],
    ['endpoint: "http://x:4318/v1/\\ttraces"\n', /endpoint: ".*" holds U\+0009/],
    ['endpoint: http://x:0/v1/traces\n', /endpoint: "http:\/\/x:0\/v1\/traces" has port 0/],
    ['endpoint: "http://user:s3cret@x:0/"\n', /endpoint: "http:\/\/<redacted>@x:0\/" has port 0/],
    ['endpoint: http:x:4318/v1/traces\n', /endpoint: "http:x:4318\/v1\/traces" does not start with http:\/\/ or https:\/\//],
    // A number or boolean where text is wanted says how to write it, as typed (1.20, not 1.2).
    ['mode: 1.20\n', /mode: must be a string: write it in quotes, "1\.20"/],
    ['mode: true\n', /mode: must be a string: write it in quotes, "true"/],
    ['identity: { files: {}, controlPlane: {} }\n', /identity: exactly one of files \/ controlPlane must be set \(found files and controlPlane\)/],
    ['identity: {}\n', /identity: exactly one of files \/ controlPlane must be set/],
  ])('%j is refused', (extra, msg) => {
    expect(() => parseYamlConfig(`trustDomain: x\n${extra}`, 'cp.yaml', schema)).toThrowError(msg);
  });
  test('__proto__ and constructor are unknown keys like any other, with the usual message; a map refuses __proto__', () => {
    for (const k of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      expect(() => parseYamlConfig(`trustDomain: x\nsvid:\n  ${k}: 1h\n`, 'cp.yaml', schema), k).toThrowError(new RegExp(`^cp\\.yaml:3:3: svid\\.${k}: unknown key "${k}"`));
    }
    const mapSchema: ObjectSchema = { type: 'object', properties: { probes: { type: 'map', values: { type: 'string' } } } };
    expect(parseYamlConfig<{ probes: Record<string, string> }>('probes: { constructor: a, b: c }\n', 'p.yaml', mapSchema).value.probes).toEqual({ constructor: 'a', b: 'c' });
    expect(() => parseYamlConfig('probes: { __proto__: { polluted: x } }\n', 'p.yaml', mapSchema)).toThrowError(/probes\.__proto__: is not a usable name/);
  });
  test('missing required key and YAML syntax errors', () => {
    expect(() => parseYamlConfig('listen: 127.0.0.1:1\n', 'cp.yaml', schema)).toThrowError(/trustDomain: is required/);
    expect(() => parseYamlConfig('trustDomain: [x\n', 'cp.yaml', schema)).toThrowError(expect.objectContaining({ code: 'TESSERA_ERR_CONFIG_UNREADABLE' }));
    expect(() => parseYamlConfig('trustDomain: x\ntrustDomain: y\n', 'cp.yaml', schema)).toThrowError(expect.objectContaining({ code: 'TESSERA_ERR_CONFIG_UNREADABLE' }));
  });
  test('a collection or quote never closed is reported where it was opened, a repeated key by name', () => {
    const unclosed = [
      ['trustDomain: x\ninbound:\n  - name: app\n    forwardTo: [127.0.0.1:22080\nlimits: {}\n', 4, 16, 'a flow sequence ([)'],
      ['trustDomain: x\nlimits: {maxConnections: 4\nlisten: 127.0.0.1:1\n', 2, 9, 'a flow map ({)'],
      ['trustDomain: x\nlimits: {a: [1, 2], b: {c: 3}, d: [4\nlisten: 127.0.0.1:1\n', 2, 35, 'a flow sequence ([)'],
      ['trustDomain: "x # not a comment\nlisten: 127.0.0.1:1\n', 1, 14, 'a quoted value (")'],
      ["# it's a comment\ntrustDomain: 'it''s\nlisten: 127.0.0.1:1\n", 2, 14, "a quoted value (')"],
      // Block scalars are text: their brackets and quotes open nothing.
      ['trustDomain: x\nnote: >\n  "unterminated [ {\nlisten: [\n', 4, 9, 'a flow sequence ([)'],
      ["trustDomain: x\nnote: |-\n  a [ { \" '\n\n  more ]\nlisten: [127.0.0.1:1\n", 6, 9, 'a flow sequence ([)'],
      ['trustDomain: x\nlist:\n  - |\n    "q\n  - [1\nlisten: 127.0.0.1:1\n', 5, 5, 'a flow sequence ([)'],
    ] as const;
    for (const [text, line, col, what] of unclosed) {
      const r = refusal(text);
      expect(r, text).toMatchObject({ code: 'TESSERA_ERR_CONFIG_UNREADABLE', line });
      expect(r.message, text).toContain(`p.yaml:${line}:${col}: YAML: ${what} opened here is never closed (noticed at line `);
    }
    const dup = refusal('trustDomain: x\nlimits:\n  maxConnections: 1\n  maxConnections: 2\n');
    expect(dup).toMatchObject({ code: 'TESSERA_ERR_CONFIG_UNREADABLE', line: 4 });
    expect(dup.message).toContain('p.yaml:4:3: YAML: the key limits.maxConnections appears twice in the same map');
  });
  test('control characters from the file are escaped in every message (an ESC sequence in a key retitled the terminal)', () => {
    const texts = [
      'trustDomain: x\n"evil\\e]0;pwned\\a\\x1b[2J": 1\n', // an unknown key
      'trustDomain: x\nlisten: "\\x1b[2Jnot an address"\n', // a bad value
      'trustDomain: x\n"a\\x1b[31m": 1\n"a\\x1b[31m": 2\n', // a repeated key
    ];
    for (const text of texts) {
      let message = '';
      try {
        parseYamlConfig(text, 'p.yaml', schema);
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message, text).toContain('\\x1b');
      expect(hasControlCharacters(message.replaceAll('\n', ' ')), text).toBe(false);
    }
  });
  test('parseAddress', () => {
    expect(parseAddress('127.0.0.1:8443')).toEqual({ host: '127.0.0.1', port: 8443 });
    expect(parseAddress('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseAddress('localhost:99999')).toBeNull();
    expect(parseAddress('::1:80')).toBeNull();
    expect(parseAddress('api.default.svc:80')).toEqual({ host: 'api.default.svc', port: 80 });
    // Names with a numeric label are names (a namespace "123"), looked up, not read as IPv4 (audit 59d F2).
    for (const a of ['api.123:80', 'cp.2024:443', '0xcafe.default:80', 'api-2.default:80', 'svc.cluster.local.:80', '0.0.0.0:80', '[::]:80', '[::ffff:127.0.0.1]:80']) expect(parseAddress(a), a).not.toBeNull();
    // Audit 59c F2: what a resolver reads as another IPv4 address (2130706433 is 127.0.0.1), or brackets round no IPv6.
    for (const a of ['2130706433:80', '0x7f.1:80', '1.2.3:80', '0:80', '010.0.0.1:80', '999.1.1.1:80', '1.2.3.4.:80', '1.2.3.4.5:80', '0xcafe:80', '[:::::]:80', '[1.2.3.4]:80']) expect(parseAddress(a), a).toBeNull();
  });
  test('an address key names the address a host in another form stands for', () => {
    expect(() => parseYamlConfig('trustDomain: example.org\nlisten: 2130706433:8443\n', 'cp.yaml', schema)).toThrowError(
      /^cp\.yaml:2:9: listen: "2130706433:8443" writes the address 127\.0\.0\.1 as "2130706433": write it as 127\.0\.0\.1/,
    );
  });
});

test('keyText writes a key path as the schema messages do: inbound[0].mtls', () => {
  expect(keyText(['inbound', 0, 'mtls'])).toBe('inbound[0].mtls');
  expect(keyText(['limits', 'drainTimeout'])).toBe('limits.drainTimeout');
  expect(keyText(['edge', 1, 'routes', 2, 'spiffeId'])).toBe('edge[1].routes[2].spiffeId');
});

describe('YAML faults in words for an operator, not the parser library (audit 61d)', () => {
  test('a second document: the line of its ---, and that a config file holds one', () => {
    const r = refusal('trustDomain: x\nlisten: 127.0.0.1:1\n---\nfoo: 1\n');
    expect(r).toEqual({ code: 'TESSERA_ERR_CONFIG_UNREADABLE', line: 3, message: 'p.yaml:3:1: YAML: a second document starts here (---): a config file holds one YAML document' });
    // A leading --- opens the one document; it is not a second.
    expect(parseYamlConfig<{ trustDomain: string }>('---\ntrustDomain: x\n', 'p.yaml', schema).value.trustDomain).toBe('x');
  });
  test('nesting past the limit is refused by name, before the parser recurses (100,000 levels ran out of stack)', () => {
    // The file's own map is the first level: the 64th bracket below it is the 65th.
    for (const [text, line, col] of [
      [`trustDomain: x\nports: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`, 2, 7 + MAX_CONFIG_DEPTH],
      [`trustDomain: x\nsvid: ${'{a: '.repeat(100_000)}1${'}'.repeat(100_000)}\n`, 2, 7 + 4 * (MAX_CONFIG_DEPTH - 1)],
      [`trustDomain: x\nports:\n${'- '.repeat(100_000)}1\n`, 3, 1 + 2 * (MAX_CONFIG_DEPTH - 1)],
    ] as const) {
      expect(refusal(text)).toEqual({ code: 'TESSERA_ERR_CONFIG_UNREADABLE', line, message: `p.yaml:${line}:${col}: YAML: nested deeper than 64 levels of maps and lists (the most a config file takes)` });
    }
    expect(MAX_CONFIG_DEPTH).toBe(64);
    // At the limit it parses, and the schema says what is wrong.
    const atLimit = `trustDomain: x\nports: ${'['.repeat(MAX_CONFIG_DEPTH - 1)}${']'.repeat(MAX_CONFIG_DEPTH - 1)}\n`;
    expect(refusal(atLimit)).toMatchObject({ code: 'TESSERA_ERR_CONFIG_INVALID', message: expect.stringContaining('ports[0]: must be a number') });
  });
  test('a key that is a list, a mapping or empty is refused as such, not as unknown key "" or "null"', () => {
    expect(refusal('trustDomain: x\n? [a, b]\n: 1\n')).toMatchObject({ code: 'TESSERA_ERR_CONFIG_INVALID', line: 2, message: 'p.yaml:2:3: (top level): a key must be a plain string (this one is a list)' });
    expect(refusal('trustDomain: x\nsvid:\n  ? {a: 1}\n  : 1h\n').message).toBe('p.yaml:3:5: svid: a key must be a plain string (this one is a mapping)');
    const mapSchema: ObjectSchema = { type: 'object', properties: { probes: { type: 'map', values: { type: 'string' } } } };
    expect(() => parseYamlConfig('probes:\n  ? [a]\n  : b\n', 'p.yaml', mapSchema)).toThrowError(/^p\.yaml:2:5: probes: a key must be a plain string \(this one is a list\)$/);
    // Audit 62e F3: an empty key read as the key "null" (unknown in an object, taken as a name in a map).
    expect(refusal('trustDomain: x\nsvid:\n  ? \n').message).toMatch(/^p\.yaml:3:\d+: svid: a key must be a plain string \(this one is empty\)$/);
    expect(refusal('trustDomain: x\n: 5\n').message).toMatch(/^p\.yaml:2:1: \(top level\): a key must be a plain string \(this one is empty\)$/);
    expect(() => parseYamlConfig('probes:\n  : b\n', 'p.yaml', mapSchema)).toThrowError(/^p\.yaml:2:\d+: probes: a key must be a plain string \(this one is empty\)$/);
  });
  test('a repeated key is named by its full path', () => {
    expect(refusal('trustDomain: x\nsvid:\n  ttl: 1h\n  ttl: 2h\n').message).toBe('p.yaml:4:3: YAML: the key svid.ttl appears twice in the same map');
    expect(refusal('trustDomain: x\nports: [1]\nidentity: { files: {}, files: {} }\n').message).toBe('p.yaml:3:24: YAML: the key identity.files appears twice in the same map');
    expect(refusal('trustDomain: x\nlist:\n  - { name: a, name: b }\n').message).toBe('p.yaml:3:16: YAML: the key list[0].name appears twice in the same map');
    expect(refusal('trustDomain: x\ntrustDomain: y\n').message).toBe('p.yaml:2:1: YAML: the key trustDomain appears twice in the same map');
  });
});
