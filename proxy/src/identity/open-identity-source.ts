// Opens the configured identity source: files (loaded synchronously, so bad files fail the start) or the control
// plane (its module, and gRPC with it, imported only then). Event logging and rotation metrics are wired here, and
// the control-plane metrics are registered only for a control-plane identity. Policies: authz/open-policy-source.ts.
import type { Registry } from 'prom-client';
import type { ProxyConfig } from '../config/proxy-config.js';
import { FileIdentitySource } from './file-identity-source.js';
import type { IdentitySource, IdentitySourceDeps } from './identity-source.js';

/** Builds and starts the configured source; a file identity that does not load throws here (the proxy fails at start). */
export async function openIdentitySource(config: ProxyConfig, deps: Omit<IdentitySourceDeps, 'controlPlaneMetrics'> & { readonly registry: Registry }): Promise<IdentitySource> {
  const { metrics, log } = deps;
  if (config.identity.kind === 'files') {
    const source = new FileIdentitySource({
      files: config.identity,
      store: deps.store,
      clock: deps.clock,
      timers: deps.timers,
      log,
      onEvent: (e) => {
        // A new bundle file alone is a trust-bundle update, not an SVID rotation (as from the control plane).
        const svid = e.changed !== 'bundle';
        const bundle = e.changed === 'bundle' || e.changed === 'both';
        if (svid) metrics.svidRotation(e.result, e.code);
        if (bundle) metrics.trustBundleUpdate(e.result === 'success' ? 'success' : 'refused');
        if (e.result === 'success') log.info({ serial: e.serial, changed: e.changed }, svid ? 'SVID reloaded from files' : 'trust bundle reloaded from files');
        else log.warn({ code: e.code, err: e.error, changed: e.changed }, 'identity files refused; the previous identity stays');
      },
    });
    source.loadInitial();
    metrics.svidRotation('success');
    source.start();
    return source;
  }
  // gRPC and protobuf load only for this source: a proxy on file identities does not pay their memory.
  const [{ ControlPlaneIdentitySource }, { ControlPlaneMetrics }] = await Promise.all([import('./control-plane-identity-source.js'), import('../telemetry/control-plane-metrics.js')]);
  const { registry, ...sourceDeps } = deps;
  const source = new ControlPlaneIdentitySource(config.identity, config.authorization.defaultAction, { ...sourceDeps, controlPlaneMetrics: new ControlPlaneMetrics(registry) });
  source.start();
  return source;
}
