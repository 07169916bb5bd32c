// Starts the mesh scenarios' "node floor" pair (harness/children/node-floor.ts): two Node processes with one
// multiplexed mTLS connection between them and none of a sidecar's work, the same Node flags as the Tessera pair.
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from '../../shared-io/node-flags.js';
import { SERVER_DNS } from '../harness/bench-pki.js';
import { freePorts } from '../harness/ports.js';
import type { PairHandle, TopologyEnv } from './topology.js';

const NODE_FLOOR = fileURLToPath(new URL('../harness/children/node-floor.js', import.meta.url));

export async function startNodeFloorPair(env: TopologyEnv, appPort: number): Promise<PairHandle> {
  const [entryPort, serverPort] = await freePorts(2);
  const run = (role: 'client' | 'server', extra: Record<string, unknown>, leaf = role === 'client' ? env.client : env.server) =>
    env.group.start({
      name: `node-floor-${role}`,
      command: process.execPath,
      args: [...NODE_FLAGS, NODE_FLOOR, JSON.stringify({ role, certFile: leaf.chainFile, keyFile: leaf.keyFile, caFile: env.pki.rootFile, ...extra })],
      ready: { line: /^ready \d+/ },
    });
  const server = await run('server', { listenPort: serverPort, appPort });
  const client = await run('client', { listenPort: entryPort, upstreamPort: serverPort, servername: SERVER_DNS });
  return {
    name: 'node floor pair',
    entryPort: entryPort!,
    serverPort: serverPort!,
    client,
    server,
    // One connection, opened at start: nothing to count per window.
    upstreamConnections: async () => null,
  };
}
