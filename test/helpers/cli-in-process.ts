// A `tessera` command run in the test's own process: runCli with the command table and the I/O the binary gives it
// (cli/tessera.ts only wires process I/O into runCli). For a file's many cases of one command, without a node start
// each; every such file still runs each command it tests at least once through the built binary (run.ts `tessera`).
import { COMMANDS } from '../../cli/commands/index.js';
import { runCli } from '../../cli/run-cli.js';
import { systemClock } from '../../common/clock.js';
import { realTimers } from '../../shared-io/timers.js';
import type { RunResult } from './run.js';

/** `tessera <args>` in-process, run from `cwd`; never asked to stop (a one-shot command ends on its own). */
export async function tesseraInProcess(args: readonly string[], cwd = process.cwd()): Promise<RunResult> {
  const out: string[] = [];
  const err: string[] = [];
  const io = { stdout: (t: string) => void out.push(t), stderr: (t: string) => void err.push(t), env: process.env, cwd, clock: systemClock, timers: realTimers, stopSignal: new Promise<NodeJS.Signals>(() => {}) };
  const code = await runCli(args, COMMANDS, io);
  return { code, stdout: out.join(''), stderr: err.join('') };
}
