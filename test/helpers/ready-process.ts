// Long-running children for tests (`tessera <command>`, nginx, bench helpers), started and awaited (bounded)
// until ready, under the one process supervisor (none outlives the test worker).
import type { ChildProcess } from 'node:child_process';
import { type ProcessSpec, ProcessSupervisor, type SupervisedProcess } from '../../shared-io/process-supervisor.js';
import { TESSERA_BIN } from './run.js';

// One per test worker: it SIGKILLs whatever a failed test left running when the worker exits.
const testProcesses = new ProcessSupervisor({ graceMs: 15_000, defaults: { outputLimitChars: 64 << 20 } });

/** Any child a test runs for longer than one call; stop it (or let the worker's exit SIGKILL it). */
export function startTestProcess(spec: ProcessSpec): Promise<SupervisedProcess> {
  return testProcesses.start(spec);
}

export interface ReadyProcess {
  readonly proc: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** `signal` (SIGTERM), then the exit code (SIGKILL after the deadline, which then fails the caller's expectation). */
  stop(deadlineMs?: number, signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts the built CLI with `args` and waits until an output line contains `readyLine`. */
export async function startReadyProcess(args: readonly string[], readyLine: string, opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<ReadyProcess> {
  const p = await startTestProcess({
    name: `tessera ${args[0]}`,
    command: process.execPath,
    args: [TESSERA_BIN, ...args],
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    env: opts.env ?? process.env,
    ready: { line: readyLine },
    readyTimeoutMs: opts.timeoutMs ?? 20_000,
  });
  return {
    proc: p.child,
    stdout: () => p.stdout(),
    stderr: () => p.stderr(),
    exited: p.exited.then((s) => s.code),
    stop: (deadlineMs = 15_000, signal: NodeJS.Signals = 'SIGTERM') => p.stop({ graceMs: deadlineMs, signal }),
  };
}
