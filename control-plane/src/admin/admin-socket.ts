// The operator socket <dataDir>/admin.sock (owner-only): HTTP/JSON for `tessera ca|token|certs|revoke|policy
// break-glass`. A stale socket from a crash is replaced; a live one means another control plane owns the dir.
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { connect } from 'node:net';
import { TesseraError, errorHttpStatus, isTesseraError } from '../../../common/errors.js';

export type AdminHandler = (body: Record<string, unknown>, query: URLSearchParams) => unknown | Promise<unknown>;

/** "GET /v1/ca" → handler. */
export type AdminRoutes = Readonly<Record<string, AdminHandler>>;

const MAX_BODY = 64 * 1024;

/** Whether something accepts connections on the Unix socket at `path` (a live control plane). */
export function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new TesseraError('TESSERA_ERR_CP_ADMIN_BAD_REQUEST', 'request body too large');
    chunks.push(c as Buffer);
  }
  if (size === 0) return {};
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch {
    throw new TesseraError('TESSERA_ERR_CP_ADMIN_BAD_REQUEST', 'the body is not a JSON object');
  }
}

export class AdminSocket {
  readonly #path: string;
  readonly #routes: AdminRoutes;
  #server: Server | undefined;

  constructor(path: string, routes: AdminRoutes) {
    this.#path = path;
    this.#routes = routes;
  }

  async start(): Promise<void> {
    if (existsSync(this.#path)) {
      if (await socketAnswers(this.#path)) throw new TesseraError('TESSERA_ERR_CP_ALREADY_RUNNING', `${this.#path} answers: another control plane serves this data dir`);
      unlinkSync(this.#path);
    }
    const server = createServer((req, res) => void this.#handle(req, res));
    server.headersTimeout = 10_000;
    server.requestTimeout = 60_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => reject(new TesseraError('TESSERA_ERR_CP_LISTEN_FAILED', `${this.#path}: ${e.code ?? e.message}`)));
      server.listen(this.#path, () => resolve());
    });
    // The data dir is 0700 already; the socket itself is owner-only too.
    chmodSync(this.#path, 0o600);
    this.#server = server;
  }

  async stop(): Promise<void> {
    const s = this.#server;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
    if (existsSync(this.#path)) unlinkSync(this.#path);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const send = (status: number, value: unknown) => {
      const body = `${JSON.stringify(value)}\n`;
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    const handler = this.#routes[`${req.method} ${url.pathname}`];
    if (!handler) return send(404, { error: { code: 'TESSERA_ERR_CP_ADMIN_BAD_REQUEST', message: `no route ${req.method} ${url.pathname}` } });
    try {
      send(200, await handler(await readBody(req), url.searchParams));
    } catch (e) {
      const code = isTesseraError(e) ? e.code : 'TESSERA_ERR_ISSUANCE_INTERNAL';
      send(errorHttpStatus(e), { error: { code, message: isTesseraError(e) ? e.message : 'internal error' } });
    }
  }
}
