// The primary's side of `workers: N` (docs/workers.md): spawns the listener workers through the one process
// supervisor, gives each the config and the latest snapshots, pushes every later snapshot to all of them, asks
// them for their stats, restarts one that dies (bounded backoff, counted, each failed attempt too) and drains them
// all together. It keeps the last edge certificate set the workers loaded, for a worker started later, and pings
// every serving worker: one that stops answering is reported not ready, then killed and restarted. A worker that
// refused a snapshot part (and so enforces an older one) is counted and reported not ready until it takes a later one.
import type { ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { backoffDelay } from '../../../common/backoff.js';
import { type ErrorCode, TesseraError } from '../../../common/errors.js';
import { ProcessSupervisor, type SupervisedProcess } from '../../../shared-io/process-supervisor.js';
import type { Timers } from '../../../shared-io/timers.js';
import type { EdgeCertTexts } from '../edge/edge-certificates.js';
import type { FromWorker, PortMap, SnapshotPart, SnapshotParts, ToWorker, WorkerStats } from './worker-messages.js';
import { WORKER_ENV } from './worker-env.js';
import { DEFAULT_HEARTBEAT, type HeartbeatTimes, WorkerHeartbeat } from './worker-heartbeat.js';

export interface WorkerPoolOptions {
  readonly count: number;
  /** How a worker is started: the runtime's workerCommand, `node <cli> proxy --config F` (the worker finds its role in WORKER_ENV). */
  readonly command: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /** The config text every worker (and every restart) parses: the same listeners as the primary read. */
  readonly configText: string;
  readonly configFile: string;
  /** SIGTERM → SIGKILL grace when draining: the listeners' drain deadline plus a margin. */
  readonly drainGraceMs: number;
  readonly timers: Timers;
  readonly nowMs: () => number;
  readonly log: Logger;
  /** A worker died without being asked to: counted (tessera_worker_restarts_total). */
  readonly onRestart: (slot: number) => void;
  /** A restart attempt failed (the worker did not listen); another follows after the backoff. */
  readonly onRestartFailed: (slot: number) => void;
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  /** How long a starting worker may take to listen before it is killed and the start counted failed. */
  readonly startTimeoutMs?: number;
  /** A serving worker that stopped answering pings was killed (then restarted like one that died). */
  readonly onHung: (slot: number) => void;
  /** A worker refused a snapshot part and keeps its older copy (tessera_worker_snapshot_refusals_total{part}). */
  readonly onRefused: (slot: number, part: SnapshotPart, code: string) => void;
  readonly heartbeat?: HeartbeatTimes;
}

/** A worker listens within a second or two; one still silent after this is hung (or starved for good). */
export const START_TIMEOUT_MS = 30_000;

/** What /config shows per worker slot. */
export interface WorkerView {
  readonly slot: number;
  readonly pid: number | null;
  readonly listening: boolean;
  readonly identityGeneration: number;
  readonly restarts: number;
  /** Restart attempts that failed, and the last one's error (null once a restart succeeds). */
  readonly failedRestarts: number;
  readonly lastRestartError: string | null;
  /** False while a serving worker's ping has gone unanswered for a heartbeat period or more. */
  readonly answering: boolean;
  /** The snapshot parts this worker refused and runs an older copy of, with the refusal's error code. */
  readonly refused: Readonly<Partial<Record<SnapshotPart, string>>>;
}

/** A run lasting this long resets a slot's backoff: a worker that crashes now and then restarts at once. */
const STABLE_RUN_MS = 30_000;
const STATS_TIMEOUT_MS = 2_000;

class Slot {
  proc: SupervisedProcess | null = null;
  listening = false;
  identityGeneration = 0;
  /** Part → error code, while the worker runs an older copy of that part than the primary sent. */
  refused = new Map<SnapshotPart, string>();
  restarts = 0;
  failedRestarts = 0;
  lastRestartError: string | null = null;
  attempt = 0;
  startedAtMs = 0;
  failure: TesseraError | null = null;
  restartTimer: unknown = null;
  constructor(
    readonly index: number,
    readonly heartbeat: WorkerHeartbeat,
  ) {}
}

export class WorkerPool {
  readonly #o: WorkerPoolOptions;
  readonly #supervisor: ProcessSupervisor;
  readonly #slots: Slot[];
  /** The latest of every snapshot part: what a (re)started worker is given first. */
  #latest: SnapshotParts = {};
  #ports: PortMap = {};
  /** By edge listener: the last set any worker loaded (whole and validated there), given to every later start. */
  #edgeCertificates: Record<string, EdgeCertTexts> = {};
  #stopping = false;
  #heartbeatTimer: unknown = null;
  #nextStatsId = 1;
  readonly #pendingStats = new Map<number, (s: WorkerStats) => void>();
  readonly #waiters = new Set<() => void>();

  constructor(opts: WorkerPoolOptions) {
    this.#o = opts;
    this.#supervisor = new ProcessSupervisor({ timers: opts.timers, graceMs: opts.drainGraceMs, failureCode: 'TESSERA_ERR_PROXY_START_FAILED' });
    this.#slots = Array.from({ length: opts.count }, (_, i) => new Slot(i, new WorkerHeartbeat(opts.heartbeat ?? DEFAULT_HEARTBEAT)));
    this.#supervisor.onUnexpectedExit((name, code, signal) => this.#onExit(Number(name.slice('worker-'.length)), code, signal));
  }

  /** Bound ports by kind/name, as the first worker bound them. */
  get ports(): PortMap {
    return this.#ports;
  }

  /**
   * Starts worker 0 (which picks any port 0 of the config, unless `ports` names it: the primary's reserved ports),
   * then the others on the same ports; resolves once every worker listens. A worker that fails to start fails the
   * whole start with its error code.
   */
  async start(parts: SnapshotParts, ports?: PortMap): Promise<PortMap> {
    this.#latest = parts;
    if (ports) this.#ports = ports;
    const [first, ...rest] = this.#slots;
    await this.#launch(first!);
    await Promise.all(rest.map((s) => this.#launch(s)));
    const { periodMs } = this.#o.heartbeat ?? DEFAULT_HEARTBEAT;
    if (!this.#stopping) this.#heartbeatTimer = this.#o.timers.setInterval(() => this.#heartbeatRound(), periodMs);
    return this.#ports;
  }

  /** Installs `parts` in every worker (and in every later start); parts not given stay as they are. */
  publish(parts: SnapshotParts): void {
    this.#latest = { ...this.#latest, ...parts };
    for (const s of this.#slots) if (s.listening) this.#send(s, { type: 'update', parts });
  }

  /** Undefined when every worker listens, answers, has refused no snapshot part still in force and has installed the latest identity; else why not. */
  notReadyReason(): string | undefined {
    const generation = this.#latest.identity?.generation ?? 0;
    const now = this.#o.nowMs();
    for (const s of this.#slots) {
      if (!s.listening) return `worker ${s.index} is not listening`;
      const beat = s.heartbeat.verdict(now);
      if (beat.kind !== 'answering') return `worker ${s.index} has not answered for ${Math.floor(beat.forMs / 1000)} s`;
      const refusal = s.refused.entries().next().value;
      if (refusal) return `worker ${s.index} refused the ${refusal[0]} snapshot (${refusal[1]})`;
      if (s.identityGeneration < generation) return `worker ${s.index} has not installed identity generation ${generation}`;
    }
    return undefined;
  }

  describe(): WorkerView[] {
    const now = this.#o.nowMs();
    return this.#slots.map((s) => ({ slot: s.index, pid: s.proc?.running ? s.proc.pid : null, listening: s.listening, identityGeneration: s.identityGeneration, restarts: s.restarts, failedRestarts: s.failedRestarts, lastRestartError: s.lastRestartError, answering: s.heartbeat.verdict(now).kind === 'answering', refused: Object.fromEntries(s.refused) }));
  }

  /** Every slot's stats; undefined for a worker that is down or did not answer within the deadline. */
  async stats(): Promise<{ readonly slot: number; readonly stats: WorkerStats | undefined }[]> {
    return Promise.all(
      this.#slots.map(async (s) => {
        if (!s.listening) return { slot: s.index, stats: undefined };
        const id = this.#nextStatsId++;
        const answer = new Promise<WorkerStats | undefined>((resolve) => {
          const timer = this.#o.timers.setTimeout(() => {
            this.#pendingStats.delete(id);
            resolve(undefined);
          }, STATS_TIMEOUT_MS);
          this.#pendingStats.set(id, (st) => {
            this.#o.timers.clearTimeout(timer);
            resolve(st);
          });
        });
        this.#send(s, { type: 'stats', id });
        return { slot: s.index, stats: await answer };
      }),
    );
  }

  /** SIGTERM to every worker at once (each drains its listeners), SIGKILL after the grace; resolves when all exited. */
  async drain(): Promise<void> {
    this.#stopping = true;
    this.#o.timers.clearInterval(this.#heartbeatTimer);
    for (const s of this.#slots) this.#o.timers.clearTimeout(s.restartTimer);
    await Promise.all(this.#slots.map((s) => s.proc?.stop()));
  }

  async #launch(slot: Slot): Promise<void> {
    slot.listening = false;
    slot.failure = null;
    slot.identityGeneration = 0;
    slot.refused.clear();
    slot.heartbeat.reset();
    slot.startedAtMs = this.#o.nowMs();
    const proc = await this.#supervisor.start({
      name: `worker-${slot.index}`,
      command: this.#o.command,
      args: this.#o.args,
      env: { ...this.#o.env, [WORKER_ENV]: String(slot.index) },
      output: 'inherit',
      ipc: true,
    });
    slot.proc = proc;
    proc.child.on('message', (m: FromWorker) => this.#onMessage(slot, m));
    this.#send(slot, { type: 'init', configFile: this.#o.configFile, configText: this.#o.configText, ports: this.#ports, parts: this.#latest, edgeCertificates: this.#edgeCertificates });
    // A start that neither listens nor fails (a hung or starved process) is given up on: killed and failed, so the
    // restart loop counts it and tries again rather than wait for ever.
    const deadline = this.#o.timers.setTimeout(() => {
      if (slot.listening || slot.failure !== null || !proc.running) return;
      slot.failure = new TesseraError('TESSERA_ERR_PROXY_START_FAILED', `proxy worker ${slot.index} did not listen within ${this.#o.startTimeoutMs ?? START_TIMEOUT_MS} ms`);
      void proc.stop({ signal: 'SIGKILL' });
      for (const w of this.#waiters) w();
    }, this.#o.startTimeoutMs ?? START_TIMEOUT_MS);
    await this.#until(() => slot.listening || slot.failure !== null || !proc.running);
    this.#o.timers.clearTimeout(deadline);
    if (!slot.listening) {
      throw slot.failure ?? new TesseraError('TESSERA_ERR_PROXY_START_FAILED', `proxy worker ${slot.index} exited before it listened`);
    }
  }

  #onMessage(slot: Slot, m: FromWorker): void {
    switch (m.type) {
      case 'listening':
        // The first worker to listen fixes the ports (config port 0 = its pick); every later start reuses them.
        if (Object.keys(this.#ports).length === 0) this.#ports = m.ports;
        slot.listening = true;
        this.#o.log.info({ worker: slot.index, pid: slot.proc?.pid }, 'proxy worker listening');
        break;
      case 'installed':
        slot.identityGeneration = m.identityGeneration;
        break;
      case 'refused':
        slot.refused.set(m.part, m.code);
        this.#o.onRefused(slot.index, m.part, m.code);
        this.#o.log.error({ worker: slot.index, part: m.part, code: m.code }, 'proxy worker refused a snapshot part; it keeps the older one');
        break;
      case 'recovered':
        slot.refused.delete(m.part);
        break;
      case 'edge-certificates':
        this.#edgeCertificates = { ...this.#edgeCertificates, [m.listener]: m.texts };
        break;
      case 'failed':
        slot.failure = new TesseraError(m.code as ErrorCode, `proxy worker ${slot.index}: ${m.message}`);
        break;
      case 'pong':
        slot.heartbeat.answered();
        break;
      case 'stats': {
        const done = this.#pendingStats.get(m.id);
        this.#pendingStats.delete(m.id);
        done?.(m.stats);
        break;
      }
    }
    for (const w of this.#waiters) w();
  }

  #onExit(index: number, code: number | null, signal: string | null): void {
    const slot = this.#slots[index];
    for (const w of this.#waiters) w();
    // Only a worker that was serving is restarted here; one that fails to start fails its #launch instead.
    if (!slot?.listening || this.#stopping) return;
    slot.listening = false;
    slot.restarts++;
    this.#o.onRestart(index);
    if (this.#o.nowMs() - slot.startedAtMs >= STABLE_RUN_MS) slot.attempt = 0;
    this.#o.log.warn({ worker: index, code, signal }, 'proxy worker exited; restarting');
    this.#scheduleRestart(slot);
  }

  /** Pings every serving worker that has none outstanding; kills one that missed the kill's rounds (#onExit restarts it). */
  #heartbeatRound(): void {
    const now = this.#o.nowMs();
    for (const s of this.#slots) {
      const proc = s.proc;
      if (!s.listening || !proc?.running) continue;
      const action = s.heartbeat.round(now);
      if (action === 'ping') this.#send(s, { type: 'ping' });
      else if (action === 'kill') {
        this.#o.log.error({ worker: s.index, pid: proc.pid, silentMs: s.heartbeat.silentForMs(now) }, 'proxy worker not answering; killing it');
        this.#o.onHung(s.index);
        // kill, not stop(): the exit is then unasked, so #onExit restarts the slot as it would after a crash.
        proc.kill('SIGKILL');
      }
    }
  }

  /** Launches `slot` again after its backoff, and again after every failed attempt (counted); returns the delay. */
  #scheduleRestart(slot: Slot): number {
    const delay = backoffDelay(slot.attempt++, this.#o.backoff ?? { initialMs: 100, maxMs: 10_000 });
    slot.restartTimer = this.#o.timers.setTimeout(() => {
      if (this.#stopping) return;
      this.#launch(slot).then(
        () => {
          slot.lastRestartError = null;
        },
        (e: unknown) => {
          if (this.#stopping) return;
          slot.failedRestarts++;
          slot.lastRestartError = (e as Error).message;
          this.#o.onRestartFailed(slot.index);
          const retryInMs = this.#scheduleRestart(slot);
          this.#o.log.error({ worker: slot.index, code: (e as TesseraError).code, err: (e as Error).message, failedRestarts: slot.failedRestarts, retryInMs }, 'proxy worker restart failed');
        },
      );
    }, delay);
    return delay;
  }

  #send(slot: Slot, m: ToWorker): void {
    const child: ChildProcess | undefined = slot.proc?.child;
    if (!child?.connected) return;
    child.send(m, (err) => {
      if (err) this.#o.log.debug({ worker: slot.index, err: err.message }, 'message to proxy worker not delivered');
    });
  }

  /** Resolves once `done()` holds, re-checked after every message from a worker and every exit. */
  #until(done: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (!done()) return;
        this.#waiters.delete(check);
        resolve();
      };
      this.#waiters.add(check);
      check();
    });
  }
}
