// Binds a listener's server to its configured address; resolves with the bound port (port 0 = any free one).
// Connections Node drops at `server.maxConnections` are reported through `onDrop`, so they can be counted.
import type { AddressInfo, Server } from 'node:net';
import type { Address } from '../config/proxy-config.js';

export function listenOn(server: Server, address: Address, onDrop?: () => void): Promise<number> {
  if (onDrop) server.on('drop', onDrop);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.removeListener('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
