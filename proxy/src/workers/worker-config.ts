// What makes a worker's listeners share their ports with the other workers: every listen address carries
// `reusePort` and the port the primary names (the first worker's pick where the config says port 0).
import type { ProxyConfig } from '../config/proxy-config.js';
import type { ListenAddress } from '../listeners/listen.js';
import type { PortMap } from './worker-messages.js';

/** `config` with each listener bound with SO_REUSEPORT, on `ports[kind/name]` when given. */
export function sharedPortsConfig(config: ProxyConfig, ports: PortMap): ProxyConfig {
  const share = <T extends { readonly name: string; readonly listen: ListenAddress }>(kind: string, list: readonly T[]): T[] =>
    list.map((c) => ({ ...c, listen: { ...c.listen, port: ports[`${kind}/${c.name}`] ?? c.listen.port, reusePort: true } }));
  return Object.freeze({ ...config, inbound: share('inbound', config.inbound), outbound: share('outbound', config.outbound), edge: share('edge', config.edge) });
}
