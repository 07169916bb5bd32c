// Leader election among replicas: a session-level pg_try_advisory_lock held on a dedicated connection, with a lease.
// The winner bumps the leader_term row and keeps that term as its fencing token (writes that must come from the
// leader carry it, and the database refuses a stale one). The lock lives as long as the session: a lost connection
// is lost leadership at once, here and on the server. The session alone has no deadline (a frozen process keeps
// it), so the leader renews leader_term.renewed_at every beat; a follower that finds it older than the lease ends
// the holder's session and takes the lock (pg-leader-lease.ts). The leader in turn counts itself leader only until
// its last renewal plus the lease (its own clock), so a process resumed after a freeze stops leading before its
// first leader-only step, and the fence refuses anything already under way.
import type pg from 'pg';
import type { Clock } from '../../../../common/clock.js';
import type { Timers } from '../../../../shared-io/timers.js';
import type { ControlPlaneLogger } from '../../logger.js';
import type { PgDatabase } from './pg-database.js';
import { acquireLeadership, endStaleLeadership, renewLeadership } from './pg-leader-lease.js';

export { LEADER_LOCK_KEY } from './pg-leader-lease.js';

/** store.leaderLease by default: a frozen leader is replaced within about this long (plus one beat). */
export const DEFAULT_LEADER_LEASE_MS = 30_000;

export interface PgLeaderLockOptions {
  readonly clock: Clock;
  readonly timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
  readonly log: ControlPlaneLogger;
  /** Who holds it, recorded in leader_term (replica name). */
  readonly holder: string;
  /** How often a follower tries to take the lock and the leader renews (default 3 s; at most a third of the lease). */
  readonly retryMs?: number;
  /** How long a renewal holds (default 30 s): past it followers take over, and the leader stops counting itself one. */
  readonly leaseMs?: number;
}

export type LeaderListener = (leader: boolean, term: number | null) => void;

export class PgLeaderLock {
  readonly #db: PgDatabase;
  readonly #opts: PgLeaderLockOptions;
  readonly #leaseMs: number;
  readonly #beatMs: number;
  readonly #listeners = new Set<LeaderListener>();
  #client: pg.Client | null = null;
  #leader = false;
  #term: number | null = null;
  /** Local time until which the last renewal holds (its start plus the lease: never later than followers see it). */
  #validUntilMs = 0;
  #running = false;
  #timer: unknown = null;
  #tick: Promise<void> = Promise.resolve();

  constructor(db: PgDatabase, opts: PgLeaderLockOptions) {
    this.#db = db;
    this.#opts = opts;
    this.#leaseMs = opts.leaseMs ?? DEFAULT_LEADER_LEASE_MS;
    this.#beatMs = Math.max(1, Math.min(opts.retryMs ?? 3_000, Math.floor(this.#leaseMs / 3)));
  }

  /** Leading, and the last renewal still within the lease (a process that was frozen is not, before it beats again). */
  isLeader(): boolean {
    return this.#leader && this.#opts.clock.nowMs() < this.#validUntilMs;
  }

  /** The fencing term of the current leadership, null when not the leader. */
  get term(): number | null {
    return this.isLeader() ? this.#term : null;
  }

  /** Called on every gain and loss of leadership. Returns the unsubscribe function. */
  onChange(fn: LeaderListener): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Starts campaigning: the first try runs now, then every beat. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule(0);
  }

  /** Steps down (the session ends, so the lock is released on the server) and stops campaigning. */
  async stop(): Promise<void> {
    this.#running = false;
    this.#opts.timers.clearTimeout(this.#timer);
    await this.#tick;
    const c = this.#client;
    this.#client = null;
    this.#setLeader(false, null);
    await c?.end().catch(() => undefined);
  }

  #schedule(ms: number): void {
    this.#timer = this.#opts.timers.setTimeout(() => {
      this.#tick = this.#step().finally(() => {
        if (this.#running) this.#schedule(this.#beatMs);
      });
    }, ms);
  }

  async #step(): Promise<void> {
    let client = this.#client;
    try {
      if (!client) {
        client = this.#db.newClient();
        const c = client;
        c.on('error', (e) => this.#lost(c, e));
        c.on('end', () => this.#lost(c, new Error('connection ended')));
        this.#client = c;
        await c.connect();
      }
      if (this.#leader) return await this.#renew(client, this.#term!);
      const startedMs = this.#opts.clock.nowMs();
      const term = await acquireLeadership(client, this.#opts.holder, startedMs);
      if (term === null) return await this.#judge(client);
      if (!this.#running) return;
      this.#validUntilMs = startedMs + this.#leaseMs;
      this.#opts.log.info({ holder: this.#opts.holder, term, leaseMs: this.#leaseMs }, 'this replica is the leader');
      this.#setLeader(true, term);
    } catch (e) {
      // Holding the lock without a term (or a connection in doubt) is not leadership: drop the session.
      if (client) this.#lost(client, e);
    }
  }

  async #renew(client: pg.Client, term: number): Promise<void> {
    const startedMs = this.#opts.clock.nowMs();
    // Past the lease here, a follower may already have taken over: step down rather than renew after the fact.
    if (startedMs >= this.#validUntilMs) {
      this.#opts.log.warn({ holder: this.#opts.holder, term, leaseMs: this.#leaseMs, lateMs: startedMs - this.#validUntilMs }, 'leadership lease lapsed here (this process did not run for longer than the lease): stepping down');
      return this.#lost(client, new Error('lease lapsed'), true);
    }
    if (await renewLeadership(client, term)) {
      this.#validUntilMs = startedMs + this.#leaseMs;
      return;
    }
    this.#opts.log.warn({ holder: this.#opts.holder, term }, 'leadership taken over by another replica: stepping down');
    this.#lost(client, new Error('taken over'), true);
  }

  /** A follower: ends the holder's session when its lease has run out (the lock is taken at the next beat). */
  async #judge(client: pg.Client): Promise<void> {
    const stale = await endStaleLeadership(client, this.#leaseMs);
    if (!stale) return;
    const fields = { holder: this.#opts.holder, staleHolder: stale.holder, staleTerm: stale.term, staleMs: stale.staleMs, leaseMs: this.#leaseMs };
    if (stale.terminated) this.#opts.log.warn(fields, "the leader's lease ran out (not renewed): its PostgreSQL session was ended to take over");
    else this.#opts.log.warn(fields, "the leader's lease ran out but its PostgreSQL session could not be ended (pg_terminate_backend needs the same role or pg_signal_backend)");
  }

  #lost(client: pg.Client, e: unknown, quiet = false): void {
    if (this.#client !== client) return;
    this.#client = null;
    client.end().catch(() => undefined);
    if (this.#leader && !quiet) this.#opts.log.warn({ holder: this.#opts.holder, term: this.#term, err: (e as Error).message }, 'leadership lost with the PostgreSQL connection');
    this.#setLeader(false, null);
  }

  #setLeader(leader: boolean, term: number | null): void {
    if (this.#leader === leader && this.#term === term) return;
    this.#leader = leader;
    this.#term = term;
    if (!leader) this.#validUntilMs = 0;
    for (const fn of [...this.#listeners]) {
      try {
        fn(leader, term);
      } catch (e) {
        this.#opts.log.warn({ err: (e as Error).message }, 'a leadership listener failed');
      }
    }
  }
}
