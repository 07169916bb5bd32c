// Starts the mesh scenarios' "node floor" pairs: two Node processes with one multiplexed mTLS connection between
// them and none of a sidecar's work, the same Node flags as the Tessera pair. HTTP/1.1 callers: a framing of raw
// bytes (harness/children/node-floor.ts); HTTP/2 callers: node:http2 on every leg (node-h2-floor.ts).
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from '../../shared-io/node-flags.js';
import { SERVER_DNS } from '../harness/bench-pki.js';
import { freePorts } from '../harness/ports.js';
import type { PairHandle, TopologyEnv } from './topology.js';

const NODE_FLOOR = fileURLToPath(new URL('../harness/children/node-floor.js', import.meta.url));
const NODE_H2_FLOOR = fileURLToPath(new URL('../harness/children/node-h2-floor.js', import.meta.url));

export async function startNodeFloorPair(env: TopologyEnv, appPort: number, protocol: 'http1' | 'http2' = 'http1'): Promise<PairHandle> {
  const [entryPort, serverPort] = await freePorts(2);
  const run = (role: 'client' | 'server', extra: Record<string, unknown>, leaf = role === 'client' ? env.client : env.server) =>
    env.group.start({
      name: `node-${protocol === 'http2' ? 'h2-' : ''}floor-${role}`,
      command: process.execPath,
      args: [...NODE_FLAGS, protocol === 'http2' ? NODE_H2_FLOOR : NODE_FLOOR, JSON.stringify({ role, certFile: leaf.chainFile, keyFile: leaf.keyFile, caFile: env.pki.rootFile, ...extra })],
      ready: { line: /^ready \d+/ },
    });
  const server = await run('server', { listenPort: serverPort, appPort });
  const client = await run('client', { listenPort: entryPort, upstreamPort: serverPort, servername: SERVER_DNS });
  return {
    name: protocol === 'http2' ? 'node http2 floor pair' : 'node floor pair',
    entryPort: entryPort!,
    serverPort: serverPort!,
    client,
    server,
    // One connection, opened at start: nothing to count per window.
    upstreamConnections: async () => null,
  };
}
