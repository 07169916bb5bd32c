// The control plane's words for a refused policy file: "the previous set stays" only once a set has loaded; before
// that (a policies directory missing at the first start) the log says that nothing is loaded and the proxies'
// defaultAction decides (an outside audit: a newcomer read "the previous set stays" with no set at all).
import { Registry } from 'prom-client';
import { expect, test } from 'vitest';
import { policyDirReports } from '../../../../control-plane/src/admin/component-reports.js';
import { createMetrics } from '../../../../control-plane/src/admin/metrics.js';
import { readPolicyDir } from '../../../../shared-io/policy-dir-source.js';

test('a refused file before any set loaded says no policy is loaded; after one, that the previous set stays', () => {
  const lines: string[] = [];
  const log = { info: () => {}, warn: (_f: object, msg: string) => void lines.push(msg) };
  const r = policyDirReports('/etc/policies', createMetrics(new Registry(), { version: 't', node: 'v24' } as never), log as never, () => {});
  const refused = [{ file: '/etc/policies', line: 0, code: 'TESSERA_ERR_POLICY_INVALID', message: 'no such directory' }] as never;
  r.onErrors!(refused);
  r.onPolicies!([], {} as never);
  r.onErrors!(refused);
  expect(lines[0]).toContain('no policy is loaded yet');
  expect(lines[1]).toBe('policy file refused; the previous set stays');
});

test('a fault with no line (the directory is missing) is logged without a line field, not "line":0 (audit 61d)', () => {
  const fields: Record<string, unknown>[] = [];
  const log = { info: () => {}, warn: (f: Record<string, unknown>) => void fields.push(f) };
  const r = policyDirReports('/nonexistent-61d', createMetrics(new Registry(), { version: 't', node: 'v24' } as never), log as never, () => {});
  const read = readPolicyDir('/nonexistent-61d/policies');
  if (read.ok) throw new Error('a missing directory was read');
  r.onErrors!(read.errors);
  expect(fields).toEqual([{ file: '/nonexistent-61d/policies', code: 'TESSERA_ERR_CONFIG_UNREADABLE', err: 'cannot read the policies directory /nonexistent-61d/policies: no such file (ENOENT)' }]);
  // A fault at a line keeps it.
  r.onErrors!([{ file: 'p.yaml', line: 3, code: 'TESSERA_ERR_POLICY_INVALID', message: 'p.yaml:3:1: bad' }]);
  expect(fields[1]).toMatchObject({ file: 'p.yaml', line: 3 });
});
