// A `tessera control-plane` child process started until a given log line (not only "ready": the offline-root tests
// wait for "no intermediate is installed"), and the gRPC and admin addresses its start line names.
import type { SupervisedProcess } from '../../shared-io/process-supervisor.js';
import { startTestProcess } from './ready-process.js';
import { TESSERA_BIN } from './run.js';

/** Starts the control plane on `cfg` and waits for `readyLine`; the caller stops it (e.g. from a list it keeps). */
export async function startControlPlaneUntil(cfg: string, readyLine: string): Promise<SupervisedProcess> {
  return startTestProcess({ name: 'tessera control-plane', command: process.execPath, args: [TESSERA_BIN, 'control-plane', '--config', cfg], ready: { line: readyLine }, readyTimeoutMs: 30_000 });
}

/** The addresses of the control plane's start line. */
export function controlPlaneAddresses(p: SupervisedProcess): { grpc: string; admin: string } {
  const m = /tessera control-plane: grpc (\S+) admin (\S+)/.exec(p.stdout());
  if (!m) throw new Error(`no address line in ${p.stdout()}`);
  return { grpc: m[1]!, admin: m[2]! };
}
