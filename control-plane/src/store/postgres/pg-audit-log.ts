// The audit trail with PostgreSQL: record() appends the JSON line to this replica's own audit.log synchronously
// (O_APPEND, 0600: it survives a kill -9 once record returns, and does not depend on the database), then queues the
// shared row. One drain writes queued rows in order, in batches; while the database is away it retries with backoff
// for a bounded time, and a full queue drops new rows (counted, logged; their lines are in the local file).
import { backoffDelay } from '../../../../common/backoff.js';
import type { Clock } from '../../../../common/clock.js';
import type { Timers } from '../../../../shared-io/timers.js';
import type { ControlPlaneLogger } from '../../logger.js';
import { AuditFile } from '../audit-file.js';
import type { AuditEvent, AuditLog } from '../store-contract.js';
import type { PgQueryable } from './pg-database.js';
import { isUnavailable } from './pg-errors.js';
import { settledWithin } from '../../../../shared-io/bounded-wait.js';

export interface PgAuditOptions {
  /** This replica's local audit.log. */
  readonly file: string;
  /** audit.log is renamed to audit.log.1 before it would pass this size (0: never; default 64 MiB). */
  readonly fileMaxBytes?: number;
  readonly clock: Clock;
  readonly timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
  readonly log: ControlPlaneLogger;
  /** Rows waiting for the database at most (default 10,000); beyond, new rows are dropped from the shared table. */
  readonly maxQueued?: number;
  /** How long one batch is retried while the database is unavailable (default 5 min). */
  readonly retryForMs?: number;
}

export interface AuditQueueStats {
  readonly queued: number;
  readonly written: number;
  /** Rows the database refused, or that were given up on after retryForMs. */
  readonly failed: number;
  /** Rows not queued because the queue was full. */
  readonly dropped: number;
}

type Row = readonly [number, string, string | null, string | null, string | null, string | null, string | null, number | null, string | null, string];

const BATCH = 100;
const COLUMNS = '(at_ms, event, result, code, spiffe_id, attested_as, serial, not_after_ms, caller, json)';
const BACKOFF = { initialMs: 250, maxMs: 5_000 } as const;

/** PostgreSQL TEXT holds no NUL; the JSON column keeps the exact value (escaped), the search columns lose only that. */
const text = (v: string | undefined): string | null => (v === undefined ? null : v.replaceAll('\u0000', '\uFFFD'));

export class PgAuditLog implements AuditLog {
  readonly #file: AuditFile;
  readonly #db: PgQueryable;
  readonly #opts: PgAuditOptions;
  readonly #maxQueued: number;
  readonly #retryForMs: number;
  readonly #queue: Row[] = [];
  #enqueued = 0;
  #settled = 0;
  #written = 0;
  #failed = 0;
  #dropped = 0;
  #draining = false;
  #abandon = false;
  #closed = false;
  #wake: (() => void) | null = null;
  #waiters: { target: number; resolve: () => void }[] = [];

  constructor(db: PgQueryable, opts: PgAuditOptions) {
    this.#db = db;
    this.#opts = opts;
    this.#maxQueued = opts.maxQueued ?? 10_000;
    this.#retryForMs = opts.retryForMs ?? 300_000;
    this.#file = new AuditFile(opts.file, opts.fileMaxBytes);
  }

  record(atMs: number, e: AuditEvent): void {
    // After close the descriptor number may already belong to another file: never write through it.
    if (this.#closed) throw new Error('the audit log is closed');
    const json = this.#file.append(atMs, e);
    this.#enqueued++;
    if (this.#queue.length >= this.#maxQueued || this.#abandon) {
      this.#dropped++;
      this.#settle(1);
      return;
    }
    this.#queue.push([atMs, text(e.event)!, text(e.result), text(e.code), text(e.spiffeId), text(e.attestedAs), text(e.serial), e.notAfterMs ?? null, text(e.caller), json]);
    if (!this.#draining) void this.#drain();
  }

  async recent(prefix: string, limit = 100): Promise<Record<string, unknown>[]> {
    const pattern = `${prefix.replace(/[\\%_]/g, '\\$&')}%`;
    const rows = (await this.#db.query<{ json: string }>("SELECT json FROM audit WHERE event LIKE $1 ESCAPE '\\' ORDER BY seq DESC LIMIT $2", [pattern, limit])).rows;
    return rows.map((r) => JSON.parse(r.json) as Record<string, unknown>);
  }

  async prune(beforeMs: number, maxRows: number): Promise<number> {
    const sql = 'DELETE FROM audit WHERE seq IN (SELECT seq FROM audit WHERE at_ms < $1 ORDER BY at_ms LIMIT $2)';
    return (await this.#db.query(sql, [beforeMs, maxRows])).rowCount;
  }

  /** Resolves once every row recorded before the call is written, refused or given up on. */
  flush(): Promise<void> {
    const target = this.#enqueued;
    if (this.#settled >= target) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ target, resolve }));
  }

  stats(): AuditQueueStats {
    return { queued: this.#queue.length, written: this.#written, failed: this.#failed, dropped: this.#dropped };
  }

  /** Flushes for at most `timeoutMs`, gives up on what is left (counted as failed), then closes the local file. */
  async close(timeoutMs = 5_000): Promise<void> {
    const flushed = this.flush();
    await settledWithin(flushed, timeoutMs, this.#opts.timers);
    this.#abandon = true;
    this.#wake?.();
    await flushed;
    if (this.#closed) return;
    this.#closed = true;
    this.#file.close();
  }

  #settle(n: number): void {
    this.#settled += n;
    const done = this.#waiters.filter((w) => this.#settled >= w.target);
    this.#waiters = this.#waiters.filter((w) => this.#settled < w.target);
    for (const w of done) w.resolve();
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    let attempt = 0;
    let failingSinceMs: number | null = null;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.slice(0, BATCH);
        try {
          await this.#insert(batch);
          this.#written += batch.length;
          if (failingSinceMs !== null) this.#opts.log.info({ queued: this.#queue.length }, 'audit rows reach PostgreSQL again');
          failingSinceMs = null;
          attempt = 0;
        } catch (e) {
          const now = this.#opts.clock.nowMs();
          failingSinceMs ??= now;
          if (isUnavailable(e) && !this.#abandon && now - failingSinceMs < this.#retryForMs) {
            if (attempt === 0) this.#opts.log.warn({ queued: this.#queue.length, err: (e as Error).message }, 'audit rows cannot reach PostgreSQL; retrying (they are in the local audit.log)');
            await this.#sleep(backoffDelay(attempt++, BACKOFF));
            continue;
          }
          // At close, one failure gives up the whole queue: close stays bounded however long the database is away.
          const lost = this.#abandon ? this.#queue.length : batch.length;
          this.#failed += lost;
          this.#opts.log.error({ rows: lost, err: (e as Error).message }, 'audit rows not written to PostgreSQL (they are in the local audit.log)');
          this.#queue.splice(0, lost);
          this.#settle(lost);
          failingSinceMs = null;
          attempt = 0;
          continue;
        }
        this.#queue.splice(0, batch.length);
        this.#settle(batch.length);
      }
    } finally {
      this.#draining = false;
    }
  }

  async #insert(batch: readonly Row[]): Promise<void> {
    // Placeholders are generated from the batch size only; every value travels as a parameter.
    const width = batch[0]!.length;
    const values = batch.map((_, i) => `(${Array.from({ length: width }, (_, j) => `$${i * width + j + 1}`).join(', ')})`).join(', ');
    await this.#db.query(`INSERT INTO audit ${COLUMNS} VALUES ${values}`, batch.flat());
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = this.#opts.timers.setTimeout(() => {
        this.#wake = null;
        resolve();
      }, ms);
      this.#wake = () => {
        this.#opts.timers.clearTimeout(t);
        this.#wake = null;
        resolve();
      };
    });
  }
}
