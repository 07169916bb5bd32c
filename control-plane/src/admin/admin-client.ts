// The operator side of <dataDir>/admin.sock: one JSON request, errors re-raised with their stable code.
// Whatever answers on the socket is held to a size bound and an overall deadline, and every way it can fail
// becomes a coded error: a stuck or hostile socket must not hang the CLI, eat its memory or crash it uncoded.
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { ERROR_CATALOGUE, type ErrorCode, TesseraError } from '../../../common/errors.js';
import { escapeControlCharacters } from '../../../common/text/control-characters.js';
import { realTimers, type Timers } from '../../../shared-io/timers.js';

export const ADMIN_SOCKET = 'admin.sock';
/**
 * Far above any real answer (the largest, a certs list, is about 400 bytes a live SVID: 64 MiB is some 160,000),
 * far below what hurts the CLI (the audit's 600 MB answer took 2 GB of memory, then crashed it uncoded).
 */
export const ADMIN_ANSWER_MAX_BYTES = 64 * 1024 * 1024;
/** The most of an error answer's message the CLI prints: a real one is a sentence or two. */
const MAX_MESSAGE = 2_000;
/** The whole exchange, connect to last byte: a socket trickling bytes is cut as surely as a silent one. */
export const ADMIN_REQUEST_DEADLINE_MS = 30_000;

export function adminSocketPath(dataDir: string): string {
  return join(dataDir, ADMIN_SOCKET);
}

interface RawAnswer {
  readonly status: number;
  readonly text: string;
}

/** One HTTP exchange over the socket, settled once: the body in full, or a coded failure. */
function exchange(socketPath: string, method: string, path: string, payload: Buffer | undefined, deadlineMs: number, timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>): Promise<RawAnswer> {
  const unreachable = (why: string) => new TesseraError('TESSERA_ERR_CP_UNREACHABLE', `${socketPath}: ${why} (is the control plane running with this data dir?)`);
  const tooLarge = () => new TesseraError('TESSERA_ERR_CP_ADMIN_BAD_ANSWER', `${socketPath}: the answer is larger than ${ADMIN_ANSWER_MAX_BYTES} bytes`);
  return new Promise<RawAnswer>((resolve, reject) => {
    let settled = false;
    const settle = (outcome: { answer: RawAnswer } | { error: TesseraError }) => {
      if (settled) return;
      settled = true;
      timers.clearTimeout(deadline);
      if ('answer' in outcome) resolve(outcome.answer);
      else {
        req.destroy();
        reject(outcome.error);
      }
    };
    const deadline = timers.setTimeout(() => settle({ error: unreachable(`no whole answer within ${deadlineMs} ms`) }), deadlineMs);
    // A connection of its own (no keep-alive agent): a pooled one to a control plane since restarted fails on write.
    const req = request({ socketPath, method, path, agent: false, headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {} }, (res) => {
      const status = res.statusCode ?? 0;
      if (Number(res.headers['content-length']) > ADMIN_ANSWER_MAX_BYTES) return void settle({ error: tooLarge() });
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > ADMIN_ANSWER_MAX_BYTES) settle({ error: tooLarge() });
        else chunks.push(c);
      });
      res.on('end', () => settle({ answer: { status, text: Buffer.concat(chunks).toString('utf8') } }));
      // A cut mid-body: 'error' (aborted) on some paths, a bare 'close' before 'end' on others.
      res.on('error', (e: NodeJS.ErrnoException) => settle({ error: unreachable(`the connection broke before the whole answer (${e.code ?? e.message})`) }));
      res.on('close', () => settle({ error: unreachable('the connection closed before the whole answer') }));
    });
    // Refused or gone before any byte was sent: a control plane between its waiting socket and its serving one.
    req.on('error', (e: NodeJS.ErrnoException) => settle({ error: Object.assign(unreachable(e.code ?? e.message), { beforeSend: e.code === 'ECONNREFUSED' || e.code === 'ENOENT' }) }));
    req.end(payload);
  });
}

/** Tries and spacing of a connection refused before anything was sent (about a second in all). */
const CONNECT_TRIES = 10;
const CONNECT_RETRY_MS = 100;

/**
 * exchange(), connecting again while the socket refuses before anything was sent: an offline-root control plane closes
 * its waiting socket and opens its serving one after the first install, and the next command within ~0.3 s failed
 * TESSERA_ERR_CP_UNREACHABLE against a running control plane (audit 62h F6). Nothing is sent twice.
 */
async function connectedExchange(socketPath: string, method: string, path: string, payload: Buffer | undefined, deadlineMs: number, timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>): Promise<RawAnswer> {
  for (let tries = 1; ; tries++) {
    try {
      return await exchange(socketPath, method, path, payload, deadlineMs, timers);
    } catch (e) {
      if (tries >= CONNECT_TRIES || (e as { beforeSend?: boolean }).beforeSend !== true) throw e;
      // Held: nothing else keeps a CLI's event loop alive between tries (unref'd, the command exited mid-retry, 62k F1).
      await new Promise<void>((resolve) => timers.setTimeout(resolve, CONNECT_RETRY_MS, 'keep-alive'));
    }
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The code of an error answer, if it is one of ours: an own key of the catalogue, so `__proto__` or `toString` are not. */
function knownCode(code: unknown): ErrorCode | undefined {
  return typeof code === 'string' && Object.hasOwn(ERROR_CATALOGUE, code) ? (code as ErrorCode) : undefined;
}

/**
 * The parsed JSON of a 200 answer, as T unchecked: callers that print it check its shape (cli/admin-answer.ts).
 * timeoutMs bounds the whole exchange, not the socket's idle time.
 */
export async function adminRequest<T = unknown>(
  dataDir: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  timeoutMs = ADMIN_REQUEST_DEADLINE_MS,
  timers: Pick<Timers, 'setTimeout' | 'clearTimeout'> = realTimers,
): Promise<T> {
  const socketPath = adminSocketPath(dataDir);
  if (!existsSync(socketPath)) {
    throw new TesseraError('TESSERA_ERR_CP_UNREACHABLE', `no admin socket at ${socketPath}: is \`tessera control-plane\` running with dataDir ${dataDir}?`);
  }
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const { status, text } = await connectedExchange(socketPath, method, path, payload, timeoutMs, timers);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new TesseraError('TESSERA_ERR_CP_ADMIN_BAD_ANSWER', `${socketPath} answered HTTP ${status} with something that is not JSON`);
  }
  if (status !== 200) {
    const err = isRecord(value) && isRecord(value['error']) ? value['error'] : {};
    // Printed to a terminal: escaped (an ESC sequence cleared the screen and forged an "OK" line) and bounded.
    const message = typeof err['message'] === 'string' ? escapeControlCharacters(err['message'].slice(0, MAX_MESSAGE)) : `HTTP ${status}`;
    const code = knownCode(err['code']);
    if (code) throw new TesseraError(code, message);
    const said = err['code'] === undefined ? 'no error code' : `the error code ${JSON.stringify(err['code'])?.slice(0, 80)}, not one this CLI knows`;
    throw new TesseraError('TESSERA_ERR_CP_ADMIN_BAD_ANSWER', `${socketPath} answered HTTP ${status} with ${said}: ${message}`);
  }
  return value as T;
}
