// The identity source and the policy source of one proxy process (a single process, or the primary of workers),
// opened together: control-plane metrics are registered only for a control-plane identity; policies come from
// the policies directory when one is configured, else from the identity source, else the default action decides.
import type { Registry } from 'prom-client';
import type { ProxyConfig } from '../config/proxy-config.js';
import { openPolicyDir } from '../authz/open-policy-dir.js';
import type { IdentitySource, IdentitySourceDeps } from './identity-source.js';
import { openIdentitySource } from './open-identity-source.js';

export interface OpenedSources {
  readonly source: IdentitySource;
  /** The identity source and, when configured, the policies directory watcher: stopped at shutdown. */
  readonly stoppables: { stop(): void }[];
}

export async function openSources(config: ProxyConfig, deps: Omit<IdentitySourceDeps, 'controlPlaneMetrics'> & { readonly registry: Registry }): Promise<OpenedSources> {
  const { registry, ...sourceDeps } = deps;
  const controlPlaneMetrics = config.identity.kind === 'controlPlane' ? { controlPlaneMetrics: new (await import('../telemetry/control-plane-metrics.js')).ControlPlaneMetrics(registry) } : {};
  const source = await openIdentitySource(config, { ...sourceDeps, ...controlPlaneMetrics });
  const stoppables: { stop(): void }[] = [source];
  if (config.authorization.policiesDir) stoppables.push(openPolicyDir(config.authorization.policiesDir, deps.policies, deps.metrics, deps.log));
  else if (!source.deliversPolicies) deps.policies.setPolicies([]); // no policy source: the default action decides (deny unless configured otherwise)
  return { source, stoppables };
}
