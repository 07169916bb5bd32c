// Leader election among replicas: a session-level pg_try_advisory_lock held on a dedicated connection, tried every
// retryMs. The winner bumps the leader_term row and keeps that term as its fencing token (writes that must come
// from the leader carry it, and the database refuses a stale one). The lock lives exactly as long as the session:
// a lost connection (error, end, or a failed health check) is lost leadership at once, here and on the server.
import type pg from 'pg';
import type { Clock } from '../../../../common/clock.js';
import type { Timers } from '../../../../shared-io/timers.js';
import type { ControlPlaneLogger } from '../../logger.js';
import type { PgDatabase } from './pg-database.js';

/** pg_try_advisory_lock key of the leader: "tessera" + 2, fixed forever. */
export const LEADER_LOCK_KEY = 0x7465_7373_6572_6102n;

export interface PgLeaderLockOptions {
  readonly clock: Clock;
  readonly timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
  readonly log: ControlPlaneLogger;
  /** Who holds it, recorded in leader_term (replica name). */
  readonly holder: string;
  /** How often a follower tries to take the lock and the leader checks its connection (default 3 s). */
  readonly retryMs?: number;
}

export type LeaderListener = (leader: boolean, term: number | null) => void;

export class PgLeaderLock {
  readonly #db: PgDatabase;
  readonly #opts: PgLeaderLockOptions;
  readonly #listeners = new Set<LeaderListener>();
  #client: pg.Client | null = null;
  #leader = false;
  #term: number | null = null;
  #running = false;
  #timer: unknown = null;
  #tick: Promise<void> = Promise.resolve();

  constructor(db: PgDatabase, opts: PgLeaderLockOptions) {
    this.#db = db;
    this.#opts = opts;
  }

  isLeader(): boolean {
    return this.#leader;
  }

  /** The fencing term of the current leadership, null when not the leader. */
  get term(): number | null {
    return this.#term;
  }

  /** Called on every gain and loss of leadership. Returns the unsubscribe function. */
  onChange(fn: LeaderListener): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Starts campaigning: the first try runs now, then every retryMs. */
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
        if (this.#running) this.#schedule(this.#opts.retryMs ?? 3_000);
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
      if (this.#leader) {
        // A connection that died without a FIN is only noticed by using it (query_timeout bounds the wait).
        await client.query('SELECT 1');
        return;
      }
      const got = (await client.query<{ got: boolean }>('SELECT pg_try_advisory_lock($1) AS got', [LEADER_LOCK_KEY.toString()])).rows[0]?.got === true;
      if (!got || !this.#running) return;
      const r = await client.query<{ term: number }>(
        `INSERT INTO leader_term (id, term, holder, acquired_at_ms) VALUES (1, 1, $1, $2)
         ON CONFLICT (id) DO UPDATE SET term = leader_term.term + 1, holder = EXCLUDED.holder, acquired_at_ms = EXCLUDED.acquired_at_ms
         RETURNING term`,
        [this.#opts.holder, this.#opts.clock.nowMs()],
      );
      const term = r.rows[0]!.term;
      this.#opts.log.info({ holder: this.#opts.holder, term }, 'this replica is the leader');
      this.#setLeader(true, term);
    } catch (e) {
      // Holding the lock without a term (or a connection in doubt) is not leadership: drop the session.
      if (client) this.#lost(client, e);
    }
  }

  #lost(client: pg.Client, e: unknown): void {
    if (this.#client !== client) return;
    this.#client = null;
    client.end().catch(() => undefined);
    if (this.#leader) this.#opts.log.warn({ holder: this.#opts.holder, term: this.#term, err: (e as Error).message }, 'leadership lost with the PostgreSQL connection');
    this.#setLeader(false, null);
  }

  #setLeader(leader: boolean, term: number | null): void {
    if (this.#leader === leader && this.#term === term) return;
    this.#leader = leader;
    this.#term = term;
    for (const fn of [...this.#listeners]) {
      try {
        fn(leader, term);
      } catch (e) {
        this.#opts.log.warn({ err: (e as Error).message }, 'a leadership listener failed');
      }
    }
  }
}
