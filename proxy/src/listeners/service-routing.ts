// A listener's balancers for the services it routes to, made from the proxy's routing deps (discovery's directory,
// the balancer settings, the routing metrics) and the listener's per-endpoint resource: keep-alive pools (HTTP/1.1)
// or tunnel dial targets (TCP, CONNECT), the two kinds the outbound and forward-proxy listeners share.
import type { ServiceEndpoint } from '../../../common/routing/service-endpoint.js';
import { ServiceBalancers } from '../routing/service-balancers.js';
import type { ConnectionPool } from '../upstream/connection-pool.js';
import type { MtlsDeps } from '../upstream/connectors.js';
import { endpointPool, type TunnelEndpoint, tunnelEndpoint } from './endpoint-dial.js';
import type { ListenerDeps } from './listener-deps.js';

export function serviceBalancers<R>(deps: ListenerDeps, create: (ep: ServiceEndpoint) => R, retire: (r: R) => void): ServiceBalancers<R> {
  const routing = deps.routing;
  // The config check refuses service routing without a control plane, and main.ts passes routing deps with one.
  if (!routing) throw new Error('routing to services needs the discovery of a control plane');
  return new ServiceBalancers<R>({ directory: routing.directory, routing: routing.settings, headTimeoutMs: deps.limits.requestTimeoutMs, create, retire, metrics: routing.metrics, nowMs: deps.nowMs, random: routing.random });
}

/**
 * A keep-alive pool per endpoint (drained when the endpoint goes), and the sweep that closes their idle connections
 * (true while any pool still holds one).
 */
export function poolBalancers(deps: ListenerDeps, mtls: MtlsDeps): { readonly balancers: ServiceBalancers<ConnectionPool>; readonly sweep: () => boolean } {
  const balancers = serviceBalancers<ConnectionPool>(deps, (ep) => endpointPool(ep, mtls, deps), (pool) => pool.close());
  return {
    balancers,
    sweep: () => {
      let holds = false;
      // Every pool is swept: no short-circuit.
      for (const pool of balancers.resources()) holds = pool.sweep() || holds;
      return holds;
    },
  };
}

/** A dial target per endpoint (a connection per TCP connection or CONNECT tunnel: nothing to drain). */
export function tunnelBalancers(deps: ListenerDeps): ServiceBalancers<TunnelEndpoint> {
  return serviceBalancers<TunnelEndpoint>(deps, tunnelEndpoint, () => undefined);
}
