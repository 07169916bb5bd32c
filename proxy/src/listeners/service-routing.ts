// A listener's balancers for the services it routes to, made from the proxy's routing deps (discovery's directory,
// the balancer settings, the routing metrics) and the listener's per-endpoint resource.
import type { ServiceEndpoint } from '../../../common/routing/service-endpoint.js';
import { ServiceBalancers } from '../routing/service-balancers.js';
import type { ListenerDeps } from './listener-deps.js';

export function serviceBalancers<R>(deps: ListenerDeps, create: (ep: ServiceEndpoint) => R, retire: (r: R) => void): ServiceBalancers<R> {
  const routing = deps.routing;
  // The config check refuses service routing without a control plane, and main.ts passes routing deps with one.
  if (!routing) throw new Error('routing to services needs the discovery of a control plane');
  return new ServiceBalancers<R>({ directory: routing.directory, routing: routing.settings, create, retire, metrics: routing.metrics, nowMs: deps.nowMs, random: routing.random });
}
