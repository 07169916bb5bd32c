// The connection pool every PostgreSQL store class shares: bounded in size, a connect timeout, statement and
// idle-in-transaction timeouts set on each connection at login, BIGINT columns read as numbers, and every connection
// fault turned into TESSERA_ERR_STORE_UNAVAILABLE. Dedicated connections (LISTEN, the leader's advisory lock) are
// made from the same settings but stay outside the pool.
import pg from 'pg';
import type { ControlPlaneLogger } from '../../logger.js';
import type { PgConnectionConfig } from './pg-connection-config.js';
import { isUnavailable, storeError } from './pg-errors.js';

export interface PgPoolSettings {
  /** Connections in the pool (default 10); requests beyond wait for one, at most connectTimeoutMs. */
  readonly maxConnections: number;
  /** Opening a connection, or waiting for a free one (default 5 s). */
  readonly connectTimeoutMs: number;
  /** The server cancels a statement running longer (default 10 s). */
  readonly statementTimeoutMs: number;
  /** The server ends a session idle inside a transaction for longer (default 15 s): a stuck replica frees its locks. */
  readonly idleInTransactionTimeoutMs: number;
  /** An idle pooled connection is closed after this (default 30 s). */
  readonly idleTimeoutMs: number;
}

export const DEFAULT_POOL_SETTINGS: PgPoolSettings = Object.freeze({
  maxConnections: 10,
  connectTimeoutMs: 5_000,
  statementTimeoutMs: 10_000,
  idleInTransactionTimeoutMs: 15_000,
  idleTimeoutMs: 30_000,
});

/** What a store class runs its SQL through: the pool, or one transaction's connection. */
export interface PgQueryable {
  query<R extends object = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<{ rows: R[]; rowCount: number }>;
}

const INT8_OID = 20;
/** BIGINT (ms timestamps, counters, BIGSERIAL) as a JS number: every value Tessera stores is a safe integer. */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

export class PgDatabase implements PgQueryable {
  /** The database as logs and errors name it (password masked). */
  readonly name: string;
  readonly #config: pg.ClientConfig;
  readonly #pool: pg.Pool;

  constructor(conn: PgConnectionConfig, settings: PgPoolSettings, log: ControlPlaneLogger, applicationName: string) {
    this.name = conn.redacted;
    this.#config = {
      host: conn.host,
      port: conn.port,
      user: conn.user,
      password: conn.password,
      database: conn.database,
      ssl: conn.ssl === false ? false : { ...conn.ssl },
      types,
      application_name: applicationName.slice(0, 63),
      connectionTimeoutMillis: settings.connectTimeoutMs,
      statement_timeout: settings.statementTimeoutMs,
      idle_in_transaction_session_timeout: settings.idleInTransactionTimeoutMs,
      // A server that vanished without a FIN (a partition) never answers: give up on the client side too.
      query_timeout: settings.statementTimeoutMs + 2_000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    };
    this.#pool = new pg.Pool({ ...this.#config, max: settings.maxConnections, idleTimeoutMillis: settings.idleTimeoutMs });
    // An idle pooled connection that breaks (server restarted) is dropped by the pool; without a listener it would crash us.
    this.#pool.on('error', (e) => log.warn({ database: this.name, err: e.message }, 'a pooled PostgreSQL connection failed; it was discarded'));
  }

  async query<R extends object = Record<string, unknown>>(text: string, params: readonly unknown[] = []): Promise<{ rows: R[]; rowCount: number }> {
    try {
      const r = await this.#pool.query(text, params as unknown[]);
      return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
    } catch (e) {
      throw storeError(e, this.name);
    }
  }

  /** Runs `fn` in one transaction on one connection: COMMIT when it returns, ROLLBACK when it throws. */
  async tx<T>(fn: (q: PgQueryable) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (e) {
      throw storeError(e, this.name);
    }
    const q: PgQueryable = {
      query: async <R extends object>(text: string, params: readonly unknown[] = []) => {
        const r = await client.query(text, params as unknown[]);
        return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
      },
    };
    let broken = false;
    // While checked out the pool does not listen for the connection's errors; one between statements must not crash us.
    const onError = () => {
      broken = true;
    };
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const out = await fn(q);
      await client.query('COMMIT');
      return out;
    } catch (e) {
      broken ||= isUnavailable(e);
      if (!broken) await client.query('ROLLBACK').catch(() => (broken = true));
      throw storeError(e, this.name);
    } finally {
      // A connection that failed mid-transaction is destroyed, never handed to the next caller.
      client.removeListener('error', onError);
      client.release(broken);
    }
  }

  /** A connection of its own (not pooled), same settings; the caller connects, listens for 'error' and ends it. */
  newClient(): pg.Client {
    return new pg.Client({ ...this.#config });
  }

  /** Fails with TESSERA_ERR_STORE_UNAVAILABLE when the database cannot be reached or refuses the login. */
  async ping(): Promise<void> {
    await this.query('SELECT 1');
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
