// Child-process supervision for `tessera up`: start each part, wait for its ready line, keep its log, and stop
// everything in reverse order (SIGTERM, then SIGKILL after a deadline) — also when one part dies early.
import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { TesseraError } from '../../common/errors.js';

export interface StartSpec {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** A line on stdout matching this marks the process ready; or a loopback port that accepts connections. */
  readonly ready: RegExp | { readonly port: number };
  readonly readyTimeoutMs?: number;
}

export interface Supervised {
  readonly name: string;
  readonly pid: number;
  /** The ready line's regex match. */
  readonly readyMatch: RegExpMatchArray;
  readonly logFile: string;
}

interface Entry {
  readonly spec: StartSpec;
  readonly child: ChildProcess;
  readonly log: WriteStream;
  exited: boolean;
}

export class Supervisor {
  readonly #entries: Entry[] = [];
  readonly #logDir: string;
  #stopping = false;
  #onUnexpectedExit: (name: string, code: number | null, signal: string | null) => void = () => {};

  constructor(logDir: string) {
    this.#logDir = logDir;
  }

  onUnexpectedExit(cb: (name: string, code: number | null, signal: string | null) => void): void {
    this.#onUnexpectedExit = cb;
  }

  pids(): number[] {
    return this.#entries.map((e) => e.child.pid!).filter((p) => p !== undefined);
  }

  async start(spec: StartSpec): Promise<Supervised> {
    const logFile = join(this.#logDir, `${spec.name}.log`);
    const log = createWriteStream(logFile, { flags: 'a', mode: 0o600 });
    const child = spawn(spec.command, spec.args, { cwd: spec.cwd, env: spec.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const entry: Entry = { spec, child, log, exited: false };
    this.#entries.push(entry);
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
    const match = await new Promise<RegExpMatchArray>((resolve, reject) => {
      let buffered = '';
      const timer = setTimeout(() => {
        cleanup();
        reject(new TesseraError('TESSERA_ERR_UP_START_FAILED', `${spec.name} did not become ready within ${(spec.readyTimeoutMs ?? 20_000) / 1000}s (log: ${logFile})`));
      }, spec.readyTimeoutMs ?? 20_000);
      const ready = spec.ready;
      let poll: NodeJS.Timeout | undefined;
      let done = false;
      if (!(ready instanceof RegExp)) {
        // Poll the port with a bounded number of tries (the overall timer bounds it too).
        const probe = () => {
          const sock = connect({ host: '127.0.0.1', port: ready.port });
          sock.once('connect', () => {
            sock.destroy();
            if (done) return;
            cleanup();
            resolve([`port ${ready.port}`] as unknown as RegExpMatchArray);
          });
          sock.once('error', () => {
            sock.destroy();
            if (!done) poll = setTimeout(probe, 100);
          });
        };
        probe();
      }
      const onData = (d: Buffer) => {
        if (!(ready instanceof RegExp)) return;
        buffered = (buffered + d.toString('utf8')).slice(-65_536);
        for (const line of buffered.split('\n')) {
          const m = line.match(ready);
          if (m) {
            cleanup();
            return resolve(m);
          }
        }
      };
      const onExit = (code: number | null, signal: string | null) => {
        cleanup();
        reject(new TesseraError('TESSERA_ERR_UP_START_FAILED', `${spec.name} exited before it was ready (code ${code}, signal ${signal}); see ${logFile}`));
      };
      const onError = (e: Error) => {
        cleanup();
        reject(new TesseraError('TESSERA_ERR_UP_START_FAILED', `${spec.name} could not start: ${e.message}`));
      };
      const cleanup = () => {
        done = true;
        clearTimeout(timer);
        if (poll) clearTimeout(poll);
        child.stdout!.off('data', onData);
        child.off('exit', onExit);
        child.off('error', onError);
      };
      child.stdout!.on('data', onData);
      child.once('exit', onExit);
      child.once('error', onError);
    });
    child.once('exit', (code, signal) => {
      entry.exited = true;
      log.end();
      if (!this.#stopping) this.#onUnexpectedExit(spec.name, code, signal);
    });
    return { name: spec.name, pid: child.pid!, readyMatch: match, logFile };
  }

  /** Stops every child in reverse start order; resolves when all have exited. */
  async stopAll(graceMs = 10_000): Promise<void> {
    this.#stopping = true;
    for (const entry of [...this.#entries].reverse()) {
      if (entry.exited || entry.child.exitCode !== null) {
        entry.exited = true;
        continue;
      }
      const exited = new Promise<void>((resolve) => entry.child.once('exit', () => resolve()));
      entry.child.kill('SIGTERM');
      const killer = setTimeout(() => entry.child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(killer);
      entry.exited = true;
    }
  }
}
