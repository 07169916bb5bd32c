// Which PostgreSQL failures mean "the database is not there for us right now" (unreachable, login refused, the
// connection lost, a timeout, the server shutting down or out of connections), mapped to one coded error,
// TESSERA_ERR_STORE_UNAVAILABLE, that callers answer UNAVAILABLE. A few SQLSTATEs the operator fixes differently get
// the store code SQLite's faults get too (disk full, read-only, an I/O error, corrupted data). Anything else (a
// constraint, a bug) passes through.
import { type ErrorCode, TesseraError } from '../../../../common/errors.js';

/** SQLSTATE classes and codes of a database that is away, refusing us, or too busy: worth retrying later. */
const UNAVAILABLE_CLASSES = new Set(['08', '28', '53', '57', '58']);
const UNAVAILABLE_CODES = new Set(['3D000', '40001', '40P01', '55P03', '25P03']);

/** SQLSTATEs with a store code of their own. */
const SPECIFIC: Readonly<Record<string, ErrorCode>> = {
  '53100': 'TESSERA_ERR_STORE_FULL', // disk_full
  '25006': 'TESSERA_ERR_STORE_READ_ONLY', // read_only_sql_transaction: a standby, default_transaction_read_only
  '58030': 'TESSERA_ERR_STORE_IO', // io_error
  XX001: 'TESSERA_ERR_STORE_CORRUPT', // data_corrupted
  XX002: 'TESSERA_ERR_STORE_CORRUPT', // index_corrupted
};

/** Coded faults worth retrying later, like an unreachable database (the audit queue retries them). */
const RETRYABLE: ReadonlySet<string> = new Set(['TESSERA_ERR_STORE_UNAVAILABLE', 'TESSERA_ERR_STORE_FULL', 'TESSERA_ERR_STORE_READ_ONLY', 'TESSERA_ERR_STORE_IO']);

/** Failures of the driver or the socket below it (no SQLSTATE): all of them are about the connection. */
const CONNECTION_MESSAGES = /connection|terminated|timeout|timed out|not queryable|ssl|tls|certificate|pool|ECONN|EPIPE|socket|closed/i;

function sqlState(e: unknown): string | undefined {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && 'severity' in (e as object) ? code : undefined;
}

/** True when `e` says the database cannot serve us now (as opposed to refusing this statement). */
export function isUnavailable(e: unknown): boolean {
  if (e instanceof TesseraError) return RETRYABLE.has(e.code);
  if (!(e instanceof Error)) return false;
  const state = sqlState(e);
  if (state !== undefined) return UNAVAILABLE_CLASSES.has(state.slice(0, 2)) || UNAVAILABLE_CODES.has(state) || RETRYABLE.has(SPECIFIC[state] ?? '');
  const code = (e as NodeJS.ErrnoException).code;
  // errno codes (ECONNREFUSED, ETIMEDOUT…), TLS failures (ERR_TLS_*, certificate verification codes).
  if (typeof code === 'string' && (/^E[A-Z]+$/.test(code) || /^ERR_(TLS|SSL)_/.test(code) || /CERT|SIGNATURE|ISSUER/.test(code))) return true;
  return CONNECTION_MESSAGES.test(e.message);
}

/** `e` as its store code naming the database (redacted) when it is a connection or storage fault, else as it is. */
export function storeError(e: unknown, database: string): unknown {
  if (e instanceof TesseraError) return e;
  const state = sqlState(e);
  const specific = state === undefined ? undefined : SPECIFIC[state];
  if (!specific && !isUnavailable(e)) return e;
  const err = e as Error & { code?: string };
  const why = String(err.message || err.code || 'unknown failure').split('\n')[0];
  return new TesseraError(specific ?? 'TESSERA_ERR_STORE_UNAVAILABLE', `PostgreSQL ${database}: ${why}`, { database, ...(state ? { sqlstate: state } : err.code ? { errno: err.code } : {}) }, { cause: e });
}
