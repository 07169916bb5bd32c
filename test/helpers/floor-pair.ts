// The bench's node floor pairs (bench/harness/children/node-floor.ts, node-h2-floor.ts) started as two real
// processes from their TypeScript sources, with the bench's real PKI, in front of the test's app.
import { BenchPki, CLIENT_ID, SERVER_DNS, SERVER_ID } from '../../bench/harness/bench-pki.js';
import type { SupervisedProcess } from '../../shared-io/process-supervisor.js';
import { startTestProcess } from './ready-process.js';

export interface FloorPair {
  /** Where callers connect (the client side). */
  readonly entryPort: number;
  /** The server side's mTLS port. */
  readonly serverPort: number;
  stop(): Promise<void>;
}

export async function startFloorPair(script: string, dir: string, appPort: number): Promise<FloorPair> {
  const pki = await BenchPki.create(dir);
  const [client, server] = [await pki.writeLeaf('client', CLIENT_ID), await pki.writeLeaf('server', SERVER_ID)];
  const procs: SupervisedProcess[] = [];
  const start = async (role: string, leaf: typeof client, extra: object) => {
    const p = await startTestProcess({
      name: `floor-${role}`,
      command: process.execPath,
      args: ['--no-warnings', script, JSON.stringify({ role, listenPort: 0, certFile: leaf.chainFile, keyFile: leaf.keyFile, caFile: pki.rootFile, ...extra })],
      ready: { line: /^ready \d+/ },
    });
    procs.push(p);
    return Number(/^ready (\d+)/.exec(p.readyLine!)![1]);
  };
  const stop = async () => {
    for (const p of procs) await p.stop();
  };
  try {
    const serverPort = await start('server', server, { appPort });
    const entryPort = await start('client', client, { upstreamPort: serverPort, servername: SERVER_DNS });
    return { entryPort, serverPort, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
