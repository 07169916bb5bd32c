// The proxy's admin listener (loopback by default): /healthz, /ready, /metrics, /certs, /config, /endpoints, and the
// app's relayed kubelet probes (/app-health/<name>). Provider errors answer 500 without detail; every read
// from a client is bounded in size and time.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { type Clock, systemClock } from '../../../common/clock.js';
import { TesseraError } from '../../../common/errors.js';
import { withoutUrlCredentials } from '../../../common/text/url-credentials.js';
import { guardListenerConnections } from '../../../shared-io/listener-connections.js';
import { adminRequestRefusal } from '../../../shared-io/local-request.js';
import { http } from '../../../shared-io/node-http.js';
import type { Timers } from '../../../shared-io/timers.js';
import { keepAccepting } from '../listeners/keep-accepting.js';
import { type AppProbe, runAppProbe } from './app-probe.js';

export interface AdminServerOptions {
  readonly listen: { host: string; port: number };
  readonly registry: Registry;
  readonly readiness: () => { ready: boolean; reason?: string };
  readonly certs: () => Promise<unknown> | unknown;
  /** The effective config, secrets already redacted (PEM private keys are blanked here as a safety net). */
  readonly config: () => unknown;
  /** The balanced services' endpoints (service → endpoints with state, EWMA, outstanding). */
  readonly endpoints?: () => unknown;
  /** A provider threw while serving `path` (the client only sees {"error":"internal"}). */
  readonly onError?: (err: unknown, path: string) => void;
  /** A connection refused or cut before its request was served (counted as tessera_requests_rejected_total{direction="admin"}). */
  readonly onRefused?: (reason: 'headers_timeout' | 'header_too_large' | 'bad_request' | 'too_many_connections') => void;
  /** Time for the connection rules (a request in progress is closed to make room only past a grace). */
  readonly clock?: Clock;
  /** Overrides of ADMIN_LIMITS (tests use short timeouts). */
  readonly limits?: Partial<AdminLimits>;
  /** The app's probes the kubelet reaches through GET /app-health/<name> (admin.appProbes of the config). */
  readonly appProbes?: Readonly<Record<string, AppProbe>>;
  /** An app probe's timeout runs here. */
  readonly timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
}

export interface AdminServer {
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

export interface AdminLimits {
  readonly maxHeaderSize: number;
  readonly maxHeadersCount: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxConnections: number;
  /**
   * How often Node checks headersTimeout/requestTimeout (their resolution). Node runs this check even with no
   * connection open, so it is a wake-up of an idle sidecar's loop: 5 s (the headers timeout) costs a fifth of 1 s.
   */
  readonly timeoutCheckIntervalMs: number;
}

export const ADMIN_LIMITS: AdminLimits = Object.freeze({
  maxHeaderSize: 16 * 1024,
  maxHeadersCount: 64,
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 30_000,
  maxConnections: 64,
  timeoutCheckIntervalMs: 5_000,
});

const APP_HEALTH = '/app-health/';
const SECURITY_HEADERS = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' } as const;
const PRIVATE_KEY_PEM = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;

// Dates and bigints (certificate serials) become strings; anything that looks like a private key is blanked, and a
// URL's user:password too.
function replacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'string') return PRIVATE_KEY_PEM.test(value) ? '[redacted]' : withoutUrlCredentials(value);
  return value;
}

function send(res: ServerResponse, status: number, contentType: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    ...extra,
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

const JSON_TYPE = 'application/json; charset=utf-8';
const sendJson = (res: ServerResponse, status: number, value: unknown, pretty = false, extra?: Record<string, string>) =>
  send(res, status, JSON_TYPE, `${JSON.stringify(value, replacer, pretty ? 2 : undefined)}\n`, extra);

export async function startAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  const routes: Record<string, () => Promise<[string, string]>> = {
    '/healthz': async () => ['text/plain; charset=utf-8', 'ok\n'],
    '/metrics': async () => [opts.registry.contentType, await opts.registry.metrics()],
    '/certs': async () => [JSON_TYPE, `${JSON.stringify(await opts.certs(), replacer, 2)}\n`],
    '/config': async () => [JSON_TYPE, `${JSON.stringify(await opts.config(), replacer, 2)}\n`],
    '/endpoints': async () => [JSON_TYPE, `${JSON.stringify((await opts.endpoints?.()) ?? {}, replacer, 2)}\n`],
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const method = req.method ?? 'GET';
    try {
      // Nothing here is authenticated: only requests addressed to an IP or localhost, not from other sites' pages,
      // are answered (DNS rebinding would read /config, /certs and /endpoints).
      const refusal = adminRequestRefusal(req);
      if (refusal !== null) return sendJson(res, 403, { error: 'forbidden', reason: refusal });
      if (method !== 'GET' && method !== 'HEAD') return sendJson(res, 405, { error: 'method_not_allowed' }, false, { allow: 'GET, HEAD' });
      if (path === '/ready') {
        const r = opts.readiness();
        return sendJson(res, r.ready ? 200 : 503, r.ready ? { ready: true } : { ready: false, reason: r.reason ?? 'not ready' });
      }
      if (path.startsWith(APP_HEALTH)) {
        const name = path.slice(APP_HEALTH.length);
        const probe = opts.appProbes && Object.hasOwn(opts.appProbes, name) ? opts.appProbes[name] : undefined;
        if (!probe) return sendJson(res, 404, { error: 'not_found' });
        const status = await runAppProbe(probe, opts.timers);
        return send(res, status, 'text/plain; charset=utf-8', `${status}\n`);
      }
      const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
      if (!route) return sendJson(res, 404, { error: 'not_found' });
      const [type, body] = await route();
      return send(res, 200, type, body);
    } catch (err) {
      opts.onError?.(err, path);
      if (!res.headersSent) sendJson(res, 500, { error: 'internal' });
      else res.destroy();
    }
  }

  const limits: AdminLimits = { ...ADMIN_LIMITS, ...opts.limits };
  const server: Server = http.createServer(
    {
      maxHeaderSize: limits.maxHeaderSize,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: limits.timeoutCheckIntervalMs,
    },
    (req, res) => {
      // Cut for pipelining (shared-io/listener-connections.ts): nothing to answer.
      if (req.socket.destroyed) return;
      // Admin requests carry no body; one sent anyway is discarded rather than buffered.
      req.resume();
      void handle(req, res);
    },
  );
  server.maxHeadersCount = limits.maxHeadersCount;
  // At the cap another connection makes room, in connection-table.ts's order; a pipelining client is cut
  // (shared-io/listener-connections.ts).
  guardListenerConnections(server, { max: limits.maxConnections, clock: opts.clock ?? systemClock, onRefused: (r) => opts.onRefused?.(r === 'pipelined' ? 'bad_request' : 'too_many_connections') });
  server.timeout = limits.idleTimeoutMs;
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const status =
      err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large'
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout'
      : '400 Bad Request';
    // Closed once the answer is written, not when the client closes: one that never reads nor closes would hold
    // its slot (FIN-WAIT-2) for the idle timeout, and 64 of them kept /ready from the kubelet.
    socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`, () => socket.destroy());
    opts.onRefused?.(err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'headers_timeout' : err.code === 'HPE_HEADER_OVERFLOW' ? 'header_too_large' : 'bad_request');
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(
        new TesseraError(
          'TESSERA_ERR_ADMIN_LISTEN_FAILED',
          `The admin listener could not listen on ${opts.listen.host}:${opts.listen.port}: ${err.code ?? err.message}`,
          { host: opts.listen.host, port: opts.listen.port },
          { cause: err },
        ),
      );
    };
    server.once('error', onError);
    server.listen(opts.listen.port, opts.listen.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  // Out of descriptors, an accept fails with the server's 'error': the probe connection is lost, not the process.
  const clock = opts.clock ?? systemClock;
  keepAccepting(server, () => clock.nowMs(), () => opts.onRefused?.('too_many_connections'));

  const bound = server.address() as AddressInfo;
  const address = Object.freeze({ host: bound.address, port: bound.port });
  let closing: Promise<void> | undefined;
  return {
    address,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive connections would otherwise hold close() open until they time out.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
