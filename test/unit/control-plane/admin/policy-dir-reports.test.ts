// The control plane's words for a refused policy file: "the previous set stays" only once a set has loaded; before
// that (a policies directory missing at the first start) the log says that nothing is loaded and the proxies'
// defaultAction decides (an outside audit: a newcomer read "the previous set stays" with no set at all).
import { Registry } from 'prom-client';
import { expect, test } from 'vitest';
import { policyDirReports } from '../../../../control-plane/src/admin/component-reports.js';
import { createMetrics } from '../../../../control-plane/src/admin/metrics.js';

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
