// Where a proxy's policies come from, decided in one place (fail closed): the policies directory when one is
// configured; else the identity source when it delivers them (the control plane's Config/Watch); else none, and the
// configured default action decides every request (deny unless configured otherwise).
import type { Logger } from 'pino';
import type { ProxyConfig } from '../config/proxy-config.js';
import type { IdentitySource } from '../identity/identity-source.js';
import type { ProxyMetrics } from '../telemetry/metrics.js';
import { openPolicyDir } from './open-policy-dir.js';
import type { PolicyHolder } from './policy-holder.js';

/** Opens the policy source of `authorization`; the directory watcher it returns is stopped at shutdown. */
export function openPolicySource(authorization: ProxyConfig['authorization'], identity: IdentitySource, policies: PolicyHolder, metrics: ProxyMetrics, log: Logger): { stop(): void } | undefined {
  if (authorization.policiesDir) return openPolicyDir(authorization.policiesDir, policies, metrics, log);
  // No policy source: the empty set is "loaded", so /ready does not wait for one and the default action decides.
  if (!identity.deliversPolicies) policies.setPolicies([]);
  return undefined;
}
