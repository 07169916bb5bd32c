// Start-up failures as operators see them: one coded line naming the file, never a bare errno from deep inside.

import { TesseraError } from '../common/errors.js';
import { errnoReason } from './read-named-file.js';

export type StartupCode = 'TESSERA_ERR_CP_START_FAILED' | 'TESSERA_ERR_PROXY_START_FAILED' | 'TESSERA_ERR_INJECTOR_START_FAILED';

/**
 * A coded error passes through; anything else becomes `code` naming the file: the errno error's own path, else
 * `file` (what the caller was opening), with the syscall and the reason in words.
 */
export function startupError(e: unknown, code: StartupCode, file?: string): TesseraError {
  if (e instanceof TesseraError) return e;
  const err = e as NodeJS.ErrnoException & { dest?: string; address?: string; port?: number };
  // A socket's errors carry `address` (a Unix socket path, or a host with `port`) instead of `path`.
  const path = err?.path ?? (err?.address ? `${err.address}${err.port ? `:${err.port}` : ''}` : file);
  const what = path ? `${err?.syscall ?? 'use'} ${path}${err?.dest ? ` -> ${err.dest}` : ''}` : (err?.syscall ?? 'start');
  // Node's errno codes (ENOENT, EROFS…) get words; library codes (ERR_SQLITE_ERROR) keep their own message.
  const why = typeof err?.code === 'string' && /^E[A-Z]+$/.test(err.code) ? errnoReason(err, 'failed') : String(err?.message ?? e).split('\n')[0];
  return new TesseraError(code, `cannot ${what}: ${why}`, path ? { file: path } : {}, { cause: e });
}
