// openPolicySource (review 27c F13): the fail-closed choice of where policies come from. No directory and an
// identity source that delivers none: the empty set is in force (the default action decides, /ready does not
// wait); a source that delivers them (the control plane) is left to load them.
import pino from 'pino';
import { Registry } from 'prom-client';
import { expect, test } from 'vitest';
import { openPolicySource } from '../../../../proxy/src/authz/open-policy-source.js';
import { PolicyHolder } from '../../../../proxy/src/authz/policy-holder.js';
import type { ProxyConfig } from '../../../../proxy/src/config/proxy-config.js';
import type { IdentitySource } from '../../../../proxy/src/identity/identity-source.js';
import { ProxyMetrics } from '../../../../proxy/src/telemetry/metrics.js';

const log = pino({ level: 'silent' });
const noDir = { defaultAction: 'deny' } as ProxyConfig['authorization'];
const source = (deliversPolicies: boolean) => ({ deliversPolicies }) as IdentitySource;

test('without a policies directory, the default action decides unless the identity source delivers policies', () => {
  const metrics = new ProxyMetrics(new Registry(), {});
  const none = new PolicyHolder('deny');
  expect(openPolicySource(noDir, source(false), none, metrics, log)).toBeUndefined();
  expect(none.loaded).toBe(true);
  expect(none.current.policies).toEqual([]);
  const fromControlPlane = new PolicyHolder('deny');
  expect(openPolicySource(noDir, source(true), fromControlPlane, metrics, log)).toBeUndefined();
  expect(fromControlPlane.loaded).toBe(false);
});
