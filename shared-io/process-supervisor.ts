// The one supervisor of child processes (`tessera up`, the bench harness, the tests): spawn, keep output bounded,
// wait for a ready line or port within a deadline, stop with SIGTERM then SIGKILL after a grace, stop a group in
// reverse start order, and SIGKILL whatever is still running when the parent exits.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, createWriteStream, openSync, type WriteStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { type ErrorCode, TesseraError } from '../common/errors.js';
import { realTimers, type Timers } from './timers.js';

/** Ready when a whole output line matches (a string: contains it), or when a TCP port accepts connections. */
export type ReadyCondition = { readonly line: RegExp | string } | { readonly port: number; readonly host?: string };

export interface ProcessSpec {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly ready?: ReadyCondition;
  /** Default 20 s. */
  readonly readyTimeoutMs?: number;
  /**
   * 'pipe' (default): stdout and stderr pass through this process, are kept (bounded) in memory and copied to
   * the log file when the supervisor has a log directory. 'file': straight to the log file (no copying through
   * this process, which would cost CPU under a proxy's access log); a ready line is found by reading the file.
   * 'inherit': this process's own stdout and stderr (no copy, no ready line).
   */
  readonly output?: 'pipe' | 'file' | 'inherit';
  /** An IPC channel (child.send / process.send): the proxy's primary and its listener workers (docs/workers.md). */
  readonly ipc?: boolean;
  /** 'pipe' keeps stdin open for drivers that talk to the child. */
  readonly stdin?: 'ignore' | 'pipe';
  /** Own process group: a stop reaches its children too (nginx workers), a terminal's Ctrl-C does not. */
  readonly ownGroup?: boolean;
  /** Characters of stdout and of stderr kept in memory (the newest); default 1 Mi each. */
  readonly outputLimitChars?: number;
}

export interface SupervisorOptions {
  /** Where `<name>.log` files go; without it, output is only kept in memory. */
  readonly logDir?: string;
  /** Aborting stops everything; a start after it fails with `abortedCode`. */
  readonly signal?: AbortSignal;
  /** Deadline, grace and polling are scheduled here (default: the real timers). */
  readonly timers?: Timers;
  /** The code of start failures (exit before ready, deadline, spawn error); default TESSERA_ERR_PROCESS_NOT_READY. */
  readonly failureCode?: ErrorCode;
  readonly abortedCode?: ErrorCode;
  /** SIGTERM → SIGKILL grace of stop() and stopAll(); default 10 s. */
  readonly graceMs?: number;
  /** Spec fields every start of this supervisor gets unless it says otherwise. */
  readonly defaults?: Partial<Omit<ProcessSpec, 'name' | 'command' | 'args'>>;
}

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

const POLL_MS = 50;

/** Keeps the newest `limit` characters of a stream and hands each complete line to a listener. */
class OutputTail {
  #text = '';
  #partial = '';
  readonly #limit: number;
  onLine: ((line: string) => void) | null = null;
  constructor(limit: number) {
    this.#limit = limit;
  }
  push(chunk: string): void {
    this.#text += chunk;
    if (this.#text.length > this.#limit) this.#text = this.#text.slice(-this.#limit);
    const lines = (this.#partial + chunk).split('\n');
    this.#partial = (lines.pop() ?? '').slice(-this.#limit);
    for (const l of lines) this.onLine?.(l);
  }
  text(): string {
    return this.#text;
  }
}

function lineMatches(cond: RegExp | string, line: string): boolean {
  return typeof cond === 'string' ? line.includes(cond) : cond.test(line);
}

function portOpen(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      s.destroy();
      resolve(false);
    });
  });
}

/** The first lines often say what went wrong (a usage error), the last ones what failed last. */
function excerpt(text: string): string {
  const lines = text.trimEnd().split('\n');
  return (lines.length > 24 ? [...lines.slice(0, 2), '…', ...lines.slice(-20)] : lines).join('\n');
}

/** A spawn error in words: ENOENT here is the command (a missing cwd is checked before spawning). */
function spawnFailure(e: NodeJS.ErrnoException): string {
  if (e.code !== 'ENOENT' || typeof e.path !== 'string') return e.message;
  return e.path.includes('/') ? `${e.message}: no such file ${e.path}` : `${e.message}: command "${e.path}" not found on PATH`;
}

/** One started child: its output, its exit, and a stop that escalates. */
export class SupervisedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logFile: string | null;
  /** Resolves once the child exited and its output streams closed. */
  readonly exited: Promise<ExitStatus>;
  readyLine: string | null = null;
  /** Set by stop(): the exit that follows was asked for. */
  stopRequested = false;
  readonly #ownGroup: boolean;
  readonly #timers: Timers;
  readonly #graceMs: number;
  readonly #out: OutputTail;
  readonly #err: OutputTail;
  #status: ExitStatus | null = null;

  constructor(name: string, child: ChildProcess, logFile: string | null, o: { ownGroup: boolean; timers: Timers; graceMs: number; limit: number; log: WriteStream | null }) {
    this.name = name;
    this.child = child;
    this.logFile = logFile;
    this.#ownGroup = o.ownGroup;
    this.#timers = o.timers;
    this.#graceMs = o.graceMs;
    this.#out = new OutputTail(o.limit);
    this.#err = new OutputTail(o.limit);
    for (const [stream, tail] of [[child.stdout, this.#out], [child.stderr, this.#err]] as const) {
      // A decoder per stream: a character split across two chunks is not garbled.
      const decoder = new StringDecoder('utf8');
      stream?.on('data', (d: Buffer) => {
        tail.push(decoder.write(d));
        o.log?.write(d);
      });
    }
    this.exited = new Promise((resolve) => {
      let closed = false;
      const done = (code: number | null, signal: NodeJS.Signals | null) => {
        if (closed) return;
        closed = true;
        this.#status ??= { code, signal };
        o.log?.end();
        resolve(this.#status);
      };
      child.once('exit', (code, signal) => {
        this.#status = { code, signal };
        // Output streams a grandchild still holds open must not keep the exit from being seen.
        this.#timers.setTimeout(() => done(code, signal), 2_000);
      });
      child.once('close', done);
      // A child that never started emits 'error' and maybe no 'close'.
      child.once('error', () => {
        if (child.pid === undefined) done(null, null);
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }
  /** True until the child has exited. */
  get running(): boolean {
    return this.#status === null && this.child.exitCode === null && this.child.signalCode === null && this.child.pid !== undefined;
  }
  /** The newest output (bounded), as received. */
  stdout(): string {
    return this.#out.text();
  }
  stderr(): string {
    return this.#err.text();
  }

  /** Sends `signal` to the child (its whole group with ownGroup); false when it is gone. */
  kill(signal: NodeJS.Signals): boolean {
    const pid = this.child.pid;
    if (pid === undefined) return false;
    if (this.#ownGroup) {
      try {
        process.kill(-pid, signal);
        return true;
      } catch {
        // no group (yet, or any more): fall back to the leader while it is still ours
      }
    }
    if (!this.running) return false;
    try {
      return this.child.kill(signal);
    } catch {
      return false;
    }
  }

  /** `signal` (SIGTERM), then SIGKILL after the grace; resolves with the exit code (null when killed). */
  async stop(opts: { readonly graceMs?: number; readonly signal?: NodeJS.Signals } = {}): Promise<number | null> {
    this.stopRequested = true;
    if (this.running) {
      this.kill(opts.signal ?? 'SIGTERM');
      const killer = this.#timers.setTimeout(() => this.kill('SIGKILL'), opts.graceMs ?? this.#graceMs);
      await this.exited;
      this.#timers.clearTimeout(killer);
    } else {
      await this.exited;
    }
    // Workers left in the group (an nginx worker whose master died first) go too.
    if (this.#ownGroup && this.child.pid !== undefined) {
      try {
        process.kill(-this.child.pid, 'SIGKILL');
      } catch {
        // the group is empty
      }
    }
    return this.#status?.code ?? null;
  }

  /** Resolves with the ready line (null for a port); rejects when the child exits first or the deadline passes. */
  waitReady(cond: ReadyCondition, timeoutMs: number, failureCode: ErrorCode): Promise<string | null> {
    const t = this.#timers;
    const name = this.name;
    const where = this.logFile ? ` (log: ${this.logFile})` : '';
    const output = async () => {
      const text = this.logFile && !this.child.stdout ? await readFile(this.logFile, 'utf8').catch(() => '') : [this.stdout(), this.stderr()].filter(Boolean).join('\n');
      return text.trim() ? `\n${excerpt(text)}` : '';
    };
    return new Promise<string | null>((resolve, reject) => {
      let settled = false;
      let poll: unknown;
      const finish = (err: Error | null, line: string | null) => {
        if (settled) return;
        settled = true;
        t.clearTimeout(deadline);
        t.clearTimeout(poll);
        this.#out.onLine = null;
        this.#err.onLine = null;
        this.child.off('error', onError);
        if (err) reject(err);
        else resolve(line);
      };
      const fail = (why: string) => void output().then((o) => finish(new TesseraError(failureCode, `${name} ${why}${where}${o}`), null));
      const onError = (e: NodeJS.ErrnoException) => finish(new TesseraError(failureCode, `${name} could not start: ${spawnFailure(e)}${where}`), null);
      const deadline = t.setTimeout(() => fail(`did not become ready within ${timeoutMs} ms`), timeoutMs);
      this.child.once('error', onError);
      void this.exited.then((s) => fail(`exited before it was ready (code ${s.code}, signal ${s.signal})`));
      const schedule = (check: () => Promise<void>) => {
        const tick = () => {
          if (settled) return;
          void check().then(() => {
            if (!settled) poll = t.setTimeout(tick, POLL_MS);
          });
        };
        tick();
      };
      if ('port' in cond) {
        schedule(async () => {
          if (await portOpen(cond.port, cond.host ?? '127.0.0.1')) finish(null, null);
        });
      } else if (this.child.stdout || this.child.stderr) {
        const onLine = (l: string) => {
          if (lineMatches(cond.line, l)) finish(null, l);
        };
        // Lines already received count too (a ready line printed before the wait began).
        for (const l of [...this.stdout().split('\n').slice(0, -1), ...this.stderr().split('\n').slice(0, -1)]) if (!settled) onLine(l);
        if (!settled) {
          this.#out.onLine = onLine;
          this.#err.onLine = onLine;
        }
      } else if (this.logFile) {
        const file = this.logFile;
        schedule(async () => {
          const hit = (await readFile(file, 'utf8').catch(() => '')).split('\n').find((l) => lineMatches(cond.line, l));
          if (hit !== undefined) finish(null, hit);
        });
      } else {
        finish(new TesseraError(failureCode, `${name}: a ready line needs piped output or a log file`), null);
      }
    });
  }
}

/** A group of children stopped together in reverse start order; also on abort and (SIGKILL) on the parent's exit. */
export class ProcessSupervisor {
  readonly #o: SupervisorOptions;
  readonly #timers: Timers;
  readonly #procs: SupervisedProcess[] = [];
  #stopping = false;
  #onUnexpectedExit: (name: string, code: number | null, signal: string | null) => void = () => {};
  // Last resort when the parent exits without stopping (uncaught error, process.exit): kill synchronously.
  readonly #onParentExit = () => {
    for (const p of this.#procs) if (p.running) p.kill('SIGKILL');
  };
  #hooked = false;

  constructor(opts: SupervisorOptions = {}) {
    this.#o = opts;
    this.#timers = opts.timers ?? realTimers;
    opts.signal?.addEventListener('abort', () => void this.stopAll(), { once: true });
  }

  /** Called when a started child exits while no stop is under way. */
  onUnexpectedExit(cb: (name: string, code: number | null, signal: string | null) => void): void {
    this.#onUnexpectedExit = cb;
  }

  pids(): number[] {
    return this.#procs.filter((p) => p.running).map((p) => p.pid);
  }

  /** Spawns the child and, with `spec.ready`, waits for it; a child that fails to become ready is stopped. */
  async start(given: ProcessSpec): Promise<SupervisedProcess> {
    const spec: ProcessSpec = { ...this.#o.defaults, ...given };
    const failureCode = this.#o.failureCode ?? 'TESSERA_ERR_PROCESS_NOT_READY';
    if (this.#o.signal?.aborted) throw new TesseraError(this.#o.abortedCode ?? failureCode, `${spec.name} not started: aborted`);
    const logFile = this.#o.logDir ? join(this.#o.logDir, `${spec.name.replace(/[^\w.-]+/g, '-')}.log`) : null;
    const toFile = spec.output === 'file';
    // spawn reports a missing cwd as ENOENT of the command ("spawn node ENOENT"): say which is missing.
    if (spec.cwd !== undefined && !(await stat(spec.cwd).then((st) => st.isDirectory(), () => false))) {
      throw new TesseraError(failureCode, `${spec.name} could not start: its working directory ${spec.cwd} does not exist (or is not a directory)`);
    }
    if (toFile && !logFile) throw new TesseraError(failureCode, `${spec.name}: output 'file' needs a log directory`);
    const fd = toFile ? openSync(logFile!, 'a', 0o600) : null;
    const log = !toFile && logFile ? createWriteStream(logFile, { flags: 'a', mode: 0o600 }) : null;
    const out = spec.output === 'inherit' ? 'inherit' : 'pipe';
    let child: ChildProcess;
    try {
      child = spawn(spec.command, spec.args, {
        cwd: spec.cwd,
        env: spec.env ?? process.env,
        stdio: [spec.stdin ?? 'ignore', fd ?? out, fd ?? out, ...(spec.ipc ? (['ipc'] as const) : [])],
        detached: spec.ownGroup === true,
      });
    } finally {
      if (fd !== null) closeSync(fd);
    }
    const proc = new SupervisedProcess(spec.name, child, logFile, {
      ownGroup: spec.ownGroup === true,
      timers: this.#timers,
      graceMs: this.#o.graceMs ?? 10_000,
      limit: spec.outputLimitChars ?? 1 << 20,
      log,
    });
    this.#procs.push(proc);
    this.#hook(true);
    let started = false;
    void proc.exited.then((s) => {
      if (started && !this.#stopping && !proc.stopRequested) this.#onUnexpectedExit(spec.name, s.code, s.signal);
      this.#forget(proc);
    });
    if (spec.ready) {
      try {
        proc.readyLine = await proc.waitReady(spec.ready, spec.readyTimeoutMs ?? 20_000, failureCode);
      } catch (e) {
        await proc.stop();
        this.#forget(proc);
        throw e;
      }
    }
    started = true;
    return proc;
  }

  /** Stops every running child, newest first; resolves when all have exited. Safe to call more than once. */
  async stopAll(graceMs?: number): Promise<void> {
    this.#stopping = true;
    for (const p of [...this.#procs].reverse()) await p.stop(graceMs === undefined ? {} : { graceMs });
    this.#stopping = false;
  }

  #forget(proc: SupervisedProcess): void {
    const i = this.#procs.indexOf(proc);
    if (i >= 0) this.#procs.splice(i, 1);
    if (this.#procs.length === 0) this.#hook(false);
  }

  #hook(on: boolean): void {
    if (on === this.#hooked) return;
    this.#hooked = on;
    if (on) process.on('exit', this.#onParentExit);
    else process.off('exit', this.#onParentExit);
  }
}
