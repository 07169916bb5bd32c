// The HTTPS server the API server calls for sidecar injection: strict HTTP handling around admitPod().
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Server, createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { parseAddress } from '../../../common/config/validate-yaml.js';
import { TesseraError, describeError, isTesseraError } from '../../../common/errors.js';
import { type AdmissionRequest, admitPod, deny, readAdmissionReview, reviewResponseBody } from './admission-review.js';
import type { InjectorConfig } from './injector-config.js';

/** pino-compatible subset. */
export interface InjectorLogger {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

export interface InjectorWebhookOptions {
  /** host:port; "0.0.0.0:9443" in a pod (the API server dials the Service), port 0 in tests. */
  readonly listen: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly config: InjectorConfig;
  /** The current trust bundle (PEM); read per request so a CA rotation reaches new pods at once. */
  readonly bundlePem: () => string | Promise<string>;
  readonly logger?: InjectorLogger;
  /** Default /inject. The API server appends ?timeout=…, which is ignored. */
  readonly path?: string;
  /** Default 1 MiB; larger bodies get 413. The API server caps objects at about 1.5 MiB in etcd. */
  readonly maxBodyBytes?: number;
  /** Whole-request deadline (headers and body), default 10 s: the API server gives up after 5. */
  readonly requestTimeoutMs?: number;
  /** Why `GET /ready` should answer 503 now (e.g. shutting down), or null when ready; absent: always ready. */
  readonly notReadyReason?: () => string | null;
}

export interface InjectorWebhook {
  /** host:port actually bound (IPv6 in brackets). */
  readonly address: string;
  readonly port: number;
  /** Swaps the serving certificate for new handshakes; open connections keep theirs. */
  updateCertificate(certPem: string, keyPem: string): void;
  close(): Promise<void>;
}

const MIB = 1 << 20;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > limit) return reject(new HttpError(413, `body larger than ${limit} bytes`));
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.pause();
        reject(new HttpError(413, `body larger than ${limit} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sendText(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
  res.end(`${text}\n`);
}

export async function startInjectorWebhook(opts: InjectorWebhookOptions): Promise<InjectorWebhook> {
  const addr = parseAddress(opts.listen);
  if (!addr) throw new TesseraError('TESSERA_ERR_INJECT_BAD_CONFIG', `injector.listen: "${opts.listen}" is not host:port`, { key: 'injector.listen' });
  const path = opts.path ?? '/inject';
  const limit = opts.maxBodyBytes ?? MIB;
  const log = opts.logger;
  const tlsBase = { minVersion: 'TLSv1.2' as const };

  async function review(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') throw new HttpError(415, 'content-type must be application/json');
    const body = await readBody(req, limit);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw new HttpError(400, 'body is not JSON');
    }
    let request: AdmissionRequest;
    try {
      request = readAdmissionReview(parsed);
    } catch (e) {
      throw new HttpError(400, isTesseraError(e) ? e.message : 'malformed AdmissionReview');
    }
    let bundlePem: string;
    let outcome: ReturnType<typeof admitPod>;
    try {
      bundlePem = await opts.bundlePem();
      outcome = admitPod(request, { config: opts.config, bundlePem });
    } catch (e) {
      // The bundle source failed: fail closed, since a sidecar without a trust anchor could never start.
      log?.error({ uid: request.uid, err: describeError(e) }, 'injector: trust bundle unavailable');
      outcome = { response: deny(request.uid, 500, 'tessera injector: no trust bundle available', 'InternalError'), decision: 'denied', reason: 'no-bundle' };
    }
    const meta = isObjectWithMeta(request.object) ? request.object.metadata : {};
    const entry = {
      uid: request.uid,
      namespace: request.namespace,
      pod: meta.name ?? (meta.generateName ? `${meta.generateName}*` : undefined),
      decision: outcome.decision,
      reason: outcome.reason,
      dryRun: request.dryRun === true,
      ms: Number(process.hrtime.bigint() - started) / 1e6,
    };
    if (outcome.internalError !== undefined) log?.error({ ...entry, err: describeError(outcome.internalError) }, 'injector: admission failed');
    else if (outcome.decision === 'denied') log?.warn(entry, 'injector: admission denied');
    else log?.info(entry, 'injector: admission');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(reviewResponseBody(outcome.response));
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const pathname = (req.url ?? '').split('?')[0];
    if (pathname === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) {
      sendText(res, 200, 'ok');
      return;
    }
    if (pathname === '/ready' && (req.method === 'GET' || req.method === 'HEAD')) {
      const reason = opts.notReadyReason?.() ?? null;
      sendText(res, reason === null ? 200 : 503, reason ?? 'ready');
      return;
    }
    if (pathname !== path) {
      sendText(res, 404, 'not found');
      return;
    }
    if (req.method !== 'POST') {
      sendText(res, 405, 'method not allowed', { allow: 'POST' });
      return;
    }
    review(req, res).catch((e: unknown) => {
      if (e instanceof HttpError) {
        // After a 413 the rest of the body is never read: close the connection rather than drain it.
        const close: Record<string, string> = e.status === 413 ? { connection: 'close' } : {};
        sendText(res, e.status, e.message, close);
        if (e.status === 413) res.on('finish', () => req.socket.destroy());
        return;
      }
      log?.error({ err: describeError(e) }, 'injector: request failed');
      sendText(res, 500, 'internal error');
    });
  }

  const server: Server = createServer(
    {
      ...tlsBase,
      cert: opts.certPem,
      key: opts.keyPem,
      requestTimeout: opts.requestTimeoutMs ?? 10_000,
      headersTimeout: Math.min(opts.requestTimeoutMs ?? 10_000, 10_000),
      keepAliveTimeout: 30_000,
      maxHeaderSize: 16 * 1024,
    },
    handle,
  );
  server.maxHeadersCount = 64;
  server.on('tlsClientError', (err) => log?.warn({ err: err.message }, 'injector: TLS handshake failed'));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  return {
    address: `${host}:${bound.port}`,
    port: bound.port,
    updateCertificate(certPem, keyPem) {
      server.setSecureContext({ ...tlsBase, cert: certPem, key: keyPem, ticketKeys: server.getTicketKeys() });
    },
    close() {
      return new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), 5_000);
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}

function isObjectWithMeta(v: unknown): v is { metadata: { name?: string; generateName?: string } } {
  return typeof v === 'object' && v !== null && typeof (v as { metadata?: unknown }).metadata === 'object' && (v as { metadata?: unknown }).metadata !== null;
}
