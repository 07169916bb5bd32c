// Store faults as coded errors, named by what the operator has to fix (space, permissions, the disk, a damaged
// file) instead of surfacing as an uncoded internal error: what SQLite and the files beside it (audit.log) report.
// PostgreSQL's are mapped in postgres/pg-errors.ts. Also which faults mean "this store cannot take writes now",
// which readiness follows.
import { type ErrorCode, TesseraError } from '../../../common/errors.js';

type StoreFault = Extract<ErrorCode, `TESSERA_ERR_STORE_${string}`>;

/** errno of a failed file write or open. */
const ERRNO: Readonly<Record<string, StoreFault>> = {
  ENOSPC: 'TESSERA_ERR_STORE_FULL',
  EDQUOT: 'TESSERA_ERR_STORE_FULL',
  EFBIG: 'TESSERA_ERR_STORE_FULL',
  EROFS: 'TESSERA_ERR_STORE_READ_ONLY',
  EACCES: 'TESSERA_ERR_STORE_READ_ONLY',
  EPERM: 'TESSERA_ERR_STORE_READ_ONLY',
  EIO: 'TESSERA_ERR_STORE_IO',
};

/** SQLite primary result codes (the low byte of an extended code); any other is TESSERA_ERR_STORE_FAILED. */
const SQLITE: Readonly<Record<number, StoreFault>> = {
  3: 'TESSERA_ERR_STORE_READ_ONLY', // SQLITE_PERM
  8: 'TESSERA_ERR_STORE_READ_ONLY', // SQLITE_READONLY
  10: 'TESSERA_ERR_STORE_IO', // SQLITE_IOERR
  11: 'TESSERA_ERR_STORE_CORRUPT', // SQLITE_CORRUPT
  13: 'TESSERA_ERR_STORE_FULL', // SQLITE_FULL
  14: 'TESSERA_ERR_STORE_IO', // SQLITE_CANTOPEN
  26: 'TESSERA_ERR_STORE_CORRUPT', // SQLITE_NOTADB
};

/** A failed write or open of a store file (audit.log) as its store code; anything else as it is. */
export function fileFault(e: unknown, file: string): unknown {
  const errno = (e as NodeJS.ErrnoException | undefined)?.code;
  const code = typeof errno === 'string' && !(e instanceof TesseraError) ? ERRNO[errno] : undefined;
  if (!code) return e;
  return new TesseraError(code, `${file}: ${(e as Error).message}`, { file, errno }, { cause: e });
}

/** An error node:sqlite threw as its store code (the SQLite result named); anything else as it is. */
export function sqliteFault(e: unknown, file: string): unknown {
  const x = e as { code?: unknown; errcode?: unknown; errstr?: unknown; message?: unknown } | undefined;
  if (x?.code !== 'ERR_SQLITE_ERROR' || typeof x.errcode !== 'number') return fileFault(e, file);
  const code = SQLITE[x.errcode & 0xff] ?? 'TESSERA_ERR_STORE_FAILED';
  const why = typeof x.message === 'string' && x.message !== '' ? x.message : String(x.errstr);
  return new TesseraError(code, `${file}: ${why}`, { file, sqlite: x.errcode }, { cause: e });
}

/**
 * Why the store cannot be counted on to take writes after `e`, or null: full, read-only, an I/O fault, damaged, or
 * (PostgreSQL) unreachable. A conflict between replicas (serialization, deadlock, a lock wait) is not such a fault.
 */
export function unwritableFault(e: unknown): StoreFault | null {
  if (!(e instanceof TesseraError)) return null;
  switch (e.code) {
    case 'TESSERA_ERR_STORE_FULL':
    case 'TESSERA_ERR_STORE_READ_ONLY':
    case 'TESSERA_ERR_STORE_IO':
    case 'TESSERA_ERR_STORE_CORRUPT':
      return e.code;
    case 'TESSERA_ERR_STORE_UNAVAILABLE': {
      const state = e.details['sqlstate'];
      return typeof state === 'string' && /^(40|55)/.test(state) ? null : e.code;
    }
    default:
      return null;
  }
}
