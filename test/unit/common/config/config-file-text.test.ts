// Config text as the user wrote it (audit 55a F6, F9, F10, F11, F14, F18): the 1 MiB bound counts bytes; text that is
// not UTF-8 (a Latin-1 byte, UTF-16) is refused at its line, never read with U+FFFD; a policy file's repeated key is
// named; a YAML alias is refused as one; admin.listen on a listener's address and a policiesDir that is a file are
// caught at their keys and lines.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { MAX_CONFIG_BYTES } from '../../../../common/config/validate-yaml.js';
import { addressesOverlap } from '../../../../common/config/address-overlap.js';
import { isTesseraError, type TesseraError } from '../../../../common/errors.js';
import { parsePolicyYaml } from '../../../../common/policy/parse-policy.js';
import { loadControlPlaneConfig } from '../../../../control-plane/src/config/cp-config.js';
import { loadProxyConfig, parseProxyConfig } from '../../../../proxy/src/config/proxy-config.js';
import { readPolicyDir } from '../../../../shared-io/policy-dir-source.js';
import { makeTempDir } from '../../../helpers/run.js';

const PROXY = 'identity:\n  files: { certFile: s.pem, keyFile: k.pem, bundleFile: b.pem }\nworkloadApi: { socket: /run/w.sock }\n';
const INBOUND = 'inbound:\n  - name: app\n    listen: 127.0.0.1:15006\n    forwardTo: 127.0.0.1:8080\n';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await makeTempDir()));
afterAll(async () => cleanup());

function refusal(f: () => unknown): TesseraError {
  try {
    f();
  } catch (e) {
    if (isTesseraError(e)) return e;
    throw e;
  }
  throw new Error('accepted');
}

function file(name: string, bytes: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

test('the 1 MiB bound counts bytes: 600,000 two-byte characters (1.2 MB) are refused, the same count of ASCII is not', () => {
  const wide = `${PROXY}# ${'é'.repeat(600_000)}\n`;
  expect(wide.length).toBeLessThan(MAX_CONFIG_BYTES);
  expect(refusal(() => parseProxyConfig(wide, '/etc/p.yaml')).message).toMatch(/^\/etc\/p\.yaml:1: the file is 12\d{5} bytes, a config is at most 1048576$/);
  expect(() => parseProxyConfig(`${PROXY}# ${'e'.repeat(600_000)}\n`, '/etc/p.yaml')).not.toThrow();
  // Read from a file, the bound applies before any of it is decoded.
  const e = refusal(() => loadProxyConfig(file('wide.yaml', wide)));
  expect([e.code, e.message]).toEqual(['TESSERA_ERR_CONFIG_UNREADABLE', `config ${join(dir, 'wide.yaml')}: over 1048576 bytes, the most it may be`]);
});

test('a config that is not UTF-8 is refused at the line and column of its first bad byte, or as UTF-16', () => {
  const latin1 = file('latin1.yaml', Buffer.concat([Buffer.from('identity:\n  files: { certFile: s.pem, keyFile: k'), Buffer.from([0xe9]), Buffer.from('y.pem, bundleFile: b.pem }\nworkloadApi: { socket: /run/w.sock }\n')]));
  const e = refusal(() => loadProxyConfig(latin1));
  expect(e.code).toBe('TESSERA_ERR_CONFIG_UNREADABLE');
  expect(e.message).toBe(`${latin1}:2:39: not UTF-8: byte 0xE9 does not start or continue a UTF-8 character (a file saved as Latin-1 or Windows-1252?); save it as UTF-8`);
  // In a comment too: nothing of the file is read leniently.
  const comment = file('comment.yaml', Buffer.concat([Buffer.from(`${PROXY}# caf`), Buffer.from([0xe9, 0x0a])]));
  expect(refusal(() => loadProxyConfig(comment)).message).toContain(`${comment}:4:6: not UTF-8`);
  // A truncated multibyte character, an overlong form and a UTF-16 surrogate are not UTF-8 either.
  for (const bad of [[0xc3], [0xc0, 0xaf], [0xed, 0xa0, 0x80]]) {
    expect(refusal(() => loadProxyConfig(file('bad.yaml', Buffer.concat([Buffer.from(PROXY), Buffer.from(bad)])))).message).toContain(':4:1: not UTF-8');
  }
  const utf16 = file('utf16.yaml', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(PROXY, 'utf16le')]));
  expect(refusal(() => loadControlPlaneConfig(utf16)).message).toBe(`${utf16}:1:1: the file is UTF-16 (or UTF-32): it starts with that byte-order mark; save it as UTF-8`);
  const bare16 = file('bare16.yaml', Buffer.from(PROXY, 'utf16le'));
  expect(refusal(() => loadProxyConfig(bare16)).message).toContain('looks like UTF-16');
  // A UTF-8 byte-order mark and multibyte text are UTF-8.
  expect(loadProxyConfig(file('bom.yaml', `\ufeff${PROXY}# café ☕ 𝄞\n`)).workloadApi).toBeDefined();
});

test('a policy file that is not UTF-8 is refused at its line; a repeated key is named', () => {
  const pol = join(dir, 'pol');
  mkdirSync(pol);
  const head = 'apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: p\nspec:\n  selector: spiffe://ex.org/a\n';
  writeFileSync(join(pol, 'p.yaml'), Buffer.concat([Buffer.from(`${head}  action: ALLOW\n# caf`), Buffer.from([0xe9, 0x0a])]));
  const r = readPolicyDir(pol);
  expect(r.ok ? [] : r.errors.map((e) => [e.code, e.line, e.message])).toEqual([['TESSERA_ERR_POLICY_INVALID', 8, expect.stringMatching(/p\.yaml:8:6: not UTF-8: byte 0xE9/)]]);
  const dup = refusal(() => parsePolicyYaml(`${head}  action: ALLOW\n  action: DENY\n`, 'f.yaml'));
  expect(dup.message).toBe('f.yaml:8:3: (yaml): the key spec.action appears twice in the same map');
  const flow = refusal(() => parsePolicyYaml(`${head.replace('spec:\n  selector: spiffe://ex.org/a\n', '')}spec: { selector: spiffe://ex.org/a, action: ALLOW, action: DENY }\n`, 'f.yaml'));
  expect(flow.message).toContain('the key spec.action appears twice in the same map');
});

test('a YAML alias is refused as an alias (a merge key too), not as a value of the wrong type', () => {
  const alias = refusal(() => parseProxyConfig(`${PROXY}${INBOUND.replace('forwardTo: 127', 'forwardTo: &fw 127')}admin: { listen: *fw }\n`, 'a.yaml'));
  expect(alias.message).toBe('a.yaml:8:18: admin.listen: YAML aliases (*fw) are not supported: write the value out');
  const merge = refusal(() => parseProxyConfig(`${PROXY}limits: &l { maxHeaders: 50 }\nrouting:\n  <<: *l\n`, 'a.yaml'));
  expect(merge.message).toContain('routing.<<: YAML merge keys (<<: *name) are not supported: write the keys out');
});

test('admin.listen on the address of a listener is refused at its key and line, naming the listener', () => {
  const e = refusal(() => parseProxyConfig(`${PROXY}${INBOUND}admin:\n  listen: 127.0.0.1:15006\n`, 'p.yaml'));
  expect([e.code, e.details['key'], e.details['line']]).toEqual(['TESSERA_ERR_CONFIG_INVALID', 'admin.listen', 9]);
  expect(e.message).toBe('p.yaml:9: admin.listen: 127.0.0.1:15006 takes the address of inbound "app" (inbound[0].listen 127.0.0.1:15006, line 6)');
  // A wildcard covers the other; two different addresses on one port do not clash; port 0 never does.
  expect(refusal(() => parseProxyConfig(`${PROXY}${INBOUND.replace('127.0.0.1:15006', '0.0.0.0:15000')}`, 'p.yaml')).message).toContain('admin.listen: 127.0.0.1:15000 (the default) takes the address of inbound "app"');
  expect(() => parseProxyConfig(`${PROXY}${INBOUND}admin:\n  listen: 10.0.0.5:15006\n`, 'p.yaml')).not.toThrow();
  expect(addressesOverlap({ host: '::', port: 1 }, { host: '127.0.0.1', port: 1 })).toBe(true);
  expect(addressesOverlap({ host: 'localhost', port: 1 }, { host: '::1', port: 1 })).toBe(true);
  expect(addressesOverlap({ host: '0.0.0.0', port: 1 }, { host: '::1', port: 1 })).toBe(false);
  expect(addressesOverlap({ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: 0 })).toBe(false);
});

test('authorization.policiesDir naming a file is refused at its key and line, as a file, not as "a parent of it"', () => {
  const f = file('policies.yaml', 'x: 1\n');
  const e = refusal(() => parseProxyConfig(`${PROXY}authorization:\n  policiesDir: ${f}\n`, join(dir, 'p.yaml')));
  expect([e.details['key'], e.details['line'], e.message]).toEqual(['authorization.policiesDir', 5, `${join(dir, 'p.yaml')}:5: authorization.policiesDir: ${f} is a file, not a directory`]);
  const r = readPolicyDir(f);
  expect(r.ok ? '' : r.errors[0]!.message).toBe(`cannot read the policies directory ${f}: a file, not a directory`);
});
