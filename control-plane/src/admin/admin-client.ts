// The operator side of <dataDir>/admin.sock: one JSON request, errors re-raised with their stable code.
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { ERROR_CATALOGUE, type ErrorCode, TesseraError } from '../../../common/errors.js';

export const ADMIN_SOCKET = 'admin.sock';

export function adminSocketPath(dataDir: string): string {
  return join(dataDir, ADMIN_SOCKET);
}

export async function adminRequest<T = unknown>(dataDir: string, method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = 30_000): Promise<T> {
  const socketPath = adminSocketPath(dataDir);
  if (!existsSync(socketPath)) {
    throw new TesseraError('TESSERA_ERR_CP_UNREACHABLE', `no admin socket at ${socketPath}: is \`tessera control-plane\` running with dataDir ${dataDir}?`);
  }
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = request(
      { socketPath, method, path, headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e: NodeJS.ErrnoException) =>
      reject(new TesseraError('TESSERA_ERR_CP_UNREACHABLE', `${socketPath}: ${e.code ?? e.message} (is the control plane running with this data dir?)`)),
    );
    req.end(payload);
  });
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new TesseraError('TESSERA_ERR_CP_UNREACHABLE', `${socketPath} answered HTTP ${status} with something that is not JSON`);
  }
  if (status !== 200) {
    const err = (value as { error?: { code?: string; message?: string } }).error;
    const code = err?.code && err.code in ERROR_CATALOGUE ? (err.code as ErrorCode) : 'TESSERA_ERR_CP_UNREACHABLE';
    throw new TesseraError(code, err?.message ?? `HTTP ${status}`);
  }
  return value as T;
}
