// Which PostgreSQL failures mean "the database is not there for us right now" (unreachable, login refused, the
// connection lost, a timeout, the server shutting down or out of connections), mapped to one coded error,
// TESSERA_ERR_STORE_UNAVAILABLE, that callers answer UNAVAILABLE. Anything else (a constraint, a bug) passes through.
import { TesseraError } from '../../../../common/errors.js';

/** SQLSTATE classes and codes of a database that is away, refusing us, or too busy: worth retrying later. */
const UNAVAILABLE_CLASSES = new Set(['08', '28', '53', '57', '58']);
const UNAVAILABLE_CODES = new Set(['3D000', '40001', '40P01', '55P03', '25P03']);

/** Failures of the driver or the socket below it (no SQLSTATE): all of them are about the connection. */
const CONNECTION_MESSAGES = /connection|terminated|timeout|timed out|not queryable|ssl|tls|certificate|pool|ECONN|EPIPE|socket|closed/i;

function sqlState(e: unknown): string | undefined {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && 'severity' in (e as object) ? code : undefined;
}

/** True when `e` says the database cannot serve us now (as opposed to refusing this statement). */
export function isUnavailable(e: unknown): boolean {
  if (e instanceof TesseraError) return e.code === 'TESSERA_ERR_STORE_UNAVAILABLE';
  if (!(e instanceof Error)) return false;
  const state = sqlState(e);
  if (state !== undefined) return UNAVAILABLE_CLASSES.has(state.slice(0, 2)) || UNAVAILABLE_CODES.has(state);
  const code = (e as NodeJS.ErrnoException).code;
  // errno codes (ECONNREFUSED, ETIMEDOUT…), TLS failures (ERR_TLS_*, certificate verification codes).
  if (typeof code === 'string' && (/^E[A-Z]+$/.test(code) || /^ERR_(TLS|SSL)_/.test(code) || /CERT|SIGNATURE|ISSUER/.test(code))) return true;
  return CONNECTION_MESSAGES.test(e.message);
}

/** `e` as TESSERA_ERR_STORE_UNAVAILABLE naming the database (redacted) when it is a connection fault, else as it is. */
export function storeError(e: unknown, database: string): unknown {
  if (e instanceof TesseraError || !isUnavailable(e)) return e;
  const err = e as Error & { code?: string };
  const why = String(err.message || err.code || 'unknown failure').split('\n')[0];
  const state = sqlState(e);
  return new TesseraError('TESSERA_ERR_STORE_UNAVAILABLE', `PostgreSQL ${database}: ${why}`, { database, ...(state ? { sqlstate: state } : err.code ? { errno: err.code } : {}) }, { cause: e });
}
