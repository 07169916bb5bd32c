// A long-running `tessera <command>` child process, started and awaited (bounded) until it prints its ready line.
import type { ChildProcess } from 'node:child_process';
import { spawnTessera } from './run.js';

export interface ReadyProcess {
  readonly proc: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** SIGTERM, then the exit code (SIGKILL after the deadline, which then fails the caller's expectation). */
  stop(deadlineMs?: number): Promise<number | null>;
}

export async function startReadyProcess(args: readonly string[], readyLine: string, opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<ReadyProcess> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const proc = spawnTessera(args, { env: opts.env ?? process.env });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  proc.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tessera ${args[0]} not ready within ${timeoutMs} ms\nstdout: ${out}\nstderr: ${err}`)), timeoutMs);
    const check = () => {
      if (out.includes(`${readyLine}\n`)) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`tessera ${args[0]} exited with ${code} before ready\nstdout: ${out}\nstderr: ${err}`));
    });
  });
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    exited,
    async stop(deadlineMs = 15_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), deadlineMs);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}
