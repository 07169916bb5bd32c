// Binds a listener's server to its configured address; resolves with the bound port (port 0 = any free one).
// Connections Node drops at `server.maxConnections` are reported through `onDrop`, so they can be counted.
// An address carrying `reusePort` (set by a worker process, docs/workers.md) binds with SO_REUSEPORT, so that
// every worker binds the same port and the kernel spreads new connections over them. A socket already bound (held
// since before the proxy attested: port-reservations.ts) is taken over as it is, so the port is never let go.
import type { AddressInfo, Server } from 'node:net';
import type { Address } from '../config/proxy-config.js';

/** A listen address, optionally shared with other worker processes through SO_REUSEPORT (Linux). */
export type ListenAddress = Address & { readonly reusePort?: boolean };

export function listenOn(server: Server, address: ListenAddress | Server, onDrop?: () => void): Promise<number> {
  if (onDrop) server.on('drop', onDrop);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const listening = () => {
      server.removeListener('error', reject);
      resolve((server.address() as AddressInfo).port);
    };
    if ('listen' in address) server.listen(address, listening);
    else server.listen({ port: address.port, host: address.host, ...(address.reusePort ? { reusePort: true } : {}) }, listening);
  });
}
