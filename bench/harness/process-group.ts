// Every process a benchmark starts: spawn in its own process group, wait for readiness, stop all (also on abort/exit).
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { TesseraError } from '../../common/errors.js';

export interface StartSpec {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Ready when a stdout/stderr line matches, or when a loopback port accepts TCP connections. */
  readonly ready: { readonly line: RegExp } | { readonly port: number };
  readonly readyTimeoutMs?: number;
  /**
   * 'file' (default): stdout and stderr go straight to the log file (no pipe through this process, which would
   * cost the harness CPU under a proxy's access log); a ready line is found by reading the file.
   * 'pipe': stdin/stdout stay connected, for drivers that talk to the child (stderr still goes to the log).
   */
  readonly stdio?: 'file' | 'pipe';
}

export interface Started {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** The ready line, when readiness was a line. */
  readonly readyLine: string | null;
  /** With stdio 'pipe': stdin and stdout are open for drivers that talk to the child. */
  readonly child: ChildProcess;
}

interface Entry {
  readonly name: string;
  readonly child: ChildProcess;
  exited: boolean;
}

const STOP_GRACE_MS = 3_000;

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Signals the whole process group; `leaderOnlyFallback` also tries the pid alone (only while it is ours). */
function killGroup(pid: number, signal: NodeJS.Signals, leaderOnlyFallback = true): void {
  try {
    process.kill(-pid, signal);
  } catch {
    if (!leaderOnlyFallback) return;
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

export class ProcessGroup {
  readonly #entries: Entry[] = [];
  readonly #logDir: string;
  readonly #signal: AbortSignal | undefined;
  // Last resort when the harness exits without stopping (uncaught error, process.exit): kill synchronously.
  readonly #onExit = () => {
    for (const e of this.#entries) if (!e.exited && e.child.pid) killGroup(e.child.pid, 'SIGKILL');
  };

  constructor(logDir: string, signal?: AbortSignal) {
    this.#logDir = logDir;
    this.#signal = signal;
    process.on('exit', this.#onExit);
    signal?.addEventListener('abort', () => void this.stopAll(), { once: true });
  }

  async start(spec: StartSpec): Promise<Started> {
    if (this.#signal?.aborted) throw new TesseraError('TESSERA_ERR_BENCH_ABORTED');
    const logFile = join(this.#logDir, `${spec.name.replace(/[^\w.-]+/g, '-')}.log`);
    const fd = openSync(logFile, 'a', 0o600);
    const piped = spec.stdio === 'pipe';
    // detached: own process group, so a stop reaches nginx workers too and Ctrl-C in the terminal does not.
    const child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: spec.env ?? process.env,
      stdio: piped ? ['pipe', 'pipe', fd] : ['ignore', fd, fd],
      detached: true,
    });
    closeSync(fd);
    const entry: Entry = { name: spec.name, child, exited: false };
    this.#entries.push(entry);
    child.once('exit', () => {
      entry.exited = true;
    });
    const tail = async () => {
      const lines = (await readFile(logFile, 'utf8').catch(() => '')).trim().split('\n');
      // The first lines often say what went wrong (a usage error), the last ones what failed last (nginx emerg).
      return (lines.length > 8 ? [...lines.slice(0, 2), '…', ...lines.slice(-6)] : lines).join('\n');
    };
    const timeoutMs = spec.readyTimeoutMs ?? 15_000;
    const readyLine = await new Promise<string | null>((resolve, reject) => {
      let settled = false;
      let buffered = '';
      const finish = (err: Error | null, line: string | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearInterval(poll);
        if (piped) child.stdout!.off('data', onData);
        if (err) reject(err);
        else resolve(line);
      };
      const lineRe = 'line' in spec.ready ? spec.ready.line : null;
      const onData = (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        const hit = lines.find((l) => lineRe!.test(l));
        if (hit !== undefined) finish(null, hit);
      };
      if (lineRe && piped) child.stdout!.on('data', onData);
      let reading = false;
      const checkLog = async () => {
        if (reading || !lineRe || piped) return;
        reading = true;
        const text = await readFile(logFile, 'utf8').catch(() => '');
        reading = false;
        const hit = text.split('\n').find((l) => lineRe.test(l));
        if (hit !== undefined) finish(null, hit);
      };
      child.once('error', (e) => finish(new TesseraError('TESSERA_ERR_BENCH_PROCESS_FAILED', `${spec.name}: cannot start ${spec.command}: ${e.message}`), null));
      child.once('exit', (code, sig) => {
        void tail().then((t) =>
          finish(new TesseraError('TESSERA_ERR_BENCH_PROCESS_FAILED', `${spec.name} exited before it was ready (code ${code}, signal ${sig}):\n${t}`), null),
        );
      });
      const timer = setTimeout(() => {
        void tail().then((t) => finish(new TesseraError('TESSERA_ERR_BENCH_PROCESS_FAILED', `${spec.name} not ready after ${timeoutMs} ms:\n${t}`), null));
      }, timeoutMs);
      const port = 'port' in spec.ready ? spec.ready.port : null;
      const poll = setInterval(() => {
        if (port !== null) void portOpen(port).then((ok) => ok && finish(null, null));
        else void checkLog();
      }, 50);
    }).catch(async (e) => {
      await this.stop(entry);
      throw e;
    });
    return { name: spec.name, pid: child.pid!, logFile, readyLine, child };
  }

  async stop(entry: Entry | Started): Promise<void> {
    const e = 'exited' in entry ? entry : this.#entries.find((x) => x.child === entry.child);
    if (!e || e.exited || !e.child.pid) return;
    const exited = new Promise<void>((resolve) => e.child.once('exit', () => resolve()));
    killGroup(e.child.pid, 'SIGTERM');
    const timer = setTimeout(() => killGroup(e.child.pid!, 'SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
    // Workers left in the group (an nginx worker whose master died first) go too; the leader's pid is freed now.
    killGroup(e.child.pid, 'SIGKILL', false);
  }

  /** Stops everything in reverse start order. Safe to call more than once. */
  async stopAll(): Promise<void> {
    for (const e of [...this.#entries].reverse()) await this.stop(e);
    process.off('exit', this.#onExit);
  }
}
