// Change announcements between replicas over PostgreSQL: announce() is NOTIFY tessera_changes '<topic>' (delivered
// to every listening session after commit, this replica's included); one dedicated connection LISTENs, reconnects
// with backoff when lost, and fires every topic on each (re)connect and every pollMs, so a notification missed
// while it was away (or on a connection that died silently) is caught up within a bounded time.
import type pg from 'pg';
import { backoffDelay } from '../../../../common/backoff.js';
import type { Timers } from '../../../../shared-io/timers.js';
import type { ControlPlaneLogger } from '../../logger.js';
import type { ChangeFeed, ChangeTopic } from '../store-contract.js';
import type { PgDatabase } from './pg-database.js';

export const CHANGE_CHANNEL = 'tessera_changes';
const TOPICS: readonly ChangeTopic[] = ['ca', 'grants', 'revocations', 'registrations', 'jwt'];
const isTopic = (s: string | undefined): s is ChangeTopic => TOPICS.includes(s as ChangeTopic);

export interface PgChangeFeedOptions {
  readonly timers: Timers;
  readonly log: ControlPlaneLogger;
  /** Every topic fires at least this often (default 5 s; kept within 0.5–60 s). */
  readonly pollMs?: number;
}

const RECONNECT = { initialMs: 250, maxMs: 10_000 } as const;

export class PgChangeFeed implements ChangeFeed {
  readonly #db: PgDatabase;
  readonly #opts: PgChangeFeedOptions;
  readonly #subs = new Map<ChangeTopic, Set<() => void>>();
  #client: pg.Client | null = null;
  #listening = false;
  #closed = false;
  #attempt = 0;
  #reconnectTimer: unknown = null;
  #pollTimer: unknown = null;

  constructor(db: PgDatabase, opts: PgChangeFeedOptions) {
    this.#db = db;
    this.#opts = opts;
  }

  /** Connects the listener (in the background: a failure is retried, never thrown) and starts the poll. */
  start(): void {
    const pollMs = Math.min(60_000, Math.max(500, this.#opts.pollMs ?? 5_000));
    this.#pollTimer = this.#opts.timers.setInterval(() => this.#fireAll(), pollMs);
    void this.#connect();
  }

  /** True while the LISTEN connection is up (for readiness and tests). */
  get listening(): boolean {
    return this.#listening;
  }

  async announce(topic: ChangeTopic): Promise<void> {
    await this.#db.query('SELECT pg_notify($1, $2)', [CHANGE_CHANNEL, topic]);
    // Without a listener our own notification would not come back; the reconnect fires everything anyway.
    if (!this.#listening) this.#fire(topic);
  }

  subscribe(topic: ChangeTopic, fn: () => void): () => void {
    const set = this.#subs.get(topic) ?? new Set();
    this.#subs.set(topic, set);
    // A wrapper per subscription (as the local feed does): one function subscribed twice needs two unsubscribes.
    const entry = () => fn();
    set.add(entry);
    return () => {
      set.delete(entry);
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#opts.timers.clearInterval(this.#pollTimer);
    this.#opts.timers.clearTimeout(this.#reconnectTimer);
    const c = this.#client;
    this.#client = null;
    this.#listening = false;
    await c?.end().catch(() => undefined);
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    const client = this.#db.newClient();
    this.#client = client;
    client.on('error', (e) => this.#lost(client, e));
    client.on('end', () => this.#lost(client, new Error('connection ended')));
    client.on('notification', (m) => {
      if (m.channel === CHANGE_CHANNEL && isTopic(m.payload)) this.#fire(m.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGE_CHANNEL}`);
    } catch (e) {
      this.#lost(client, e);
      return;
    }
    if (this.#client !== client) return;
    if (this.#attempt > 0) this.#opts.log.info({ database: this.#db.name }, 'change feed listening again');
    this.#attempt = 0;
    this.#listening = true;
    this.#fireAll();
  }

  #lost(client: pg.Client, e: unknown): void {
    if (this.#client !== client || this.#closed) return;
    this.#client = null;
    this.#listening = false;
    client.end().catch(() => undefined);
    if (this.#attempt === 0) this.#opts.log.warn({ database: this.#db.name, err: (e as Error).message }, 'change feed lost its PostgreSQL connection; reconnecting');
    this.#reconnectTimer = this.#opts.timers.setTimeout(() => void this.#connect(), backoffDelay(this.#attempt++, RECONNECT));
  }

  #fireAll(): void {
    for (const t of TOPICS) this.#fire(t);
  }

  #fire(topic: ChangeTopic): void {
    for (const fn of [...(this.#subs.get(topic) ?? [])]) {
      const failed = (e: unknown) => this.#opts.log.warn({ topic, err: (e as Error).message }, 'a change subscriber failed');
      try {
        // An async subscriber's rejection is logged too, never left unhandled.
        const out = fn() as unknown;
        if (out instanceof Promise) out.catch(failed);
      } catch (e) {
        failed(e);
      }
    }
  }
}
