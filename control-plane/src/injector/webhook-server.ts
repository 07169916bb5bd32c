// The HTTPS server the API server calls for sidecar injection: strict HTTP handling around admitPod(), with bounds on
// connections, slow clients and the request bodies held at once (docs/kubernetes.md, "The injector's HTTPS server").
import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { type Clock, systemClock } from '../../../common/clock.js';
import { parseAddress } from '../../../common/config/validate-yaml.js';
import { describeError, type ErrorCode, isTesseraError, TesseraError } from '../../../common/errors.js';
import { TLS_CIPHERS } from '../../../common/tls-ciphers.js';
import { guardListenerConnections } from '../../../shared-io/listener-connections.js';
import { refuseRenegotiation } from '../../../shared-io/no-renegotiation.js';
import { realTimers, type Timers } from '../../../shared-io/timers.js';
import { AdmissionGate, type GatePass } from './admission-gate.js';
import { type AdmissionOutcome, type AdmissionRequest, admitPod, deny, readAdmissionReview, reviewResponseBody } from './admission-review.js';
import type { InjectorConfig } from './injector-config.js';
import { RefusalLog } from './refusal-log.js';

/** pino-compatible subset. */
export interface InjectorLogger {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

const MIB = 1 << 20;
/**
 * A review's body, at most. The API server takes writes of up to 3 MiB and etcd stores objects of up to 1.5 MiB in
 * protobuf, which is larger again as the review's JSON; and on reinvocation the review holds our own injection too
 * (up to MAX_PATCH_BYTES and the bundle). At 1 MiB, a pod near it was refused its second review (413) after the
 * first injected it. Istio's injector reads 6 MiB. The gate's byte budget lets one such body in at a time.
 */
export const MAX_REVIEW_BYTES = 6 * MIB;

/**
 * The server's bounds. One admission takes about a millisecond and the API server sends one review per connection
 * at a time, so these leave room for bursts of pod creation while keeping the process well inside its 256Mi
 * container limit whatever clients do (docs/kubernetes.md argues each number).
 */
export const WEBHOOK_LIMITS = Object.freeze({
  /**
   * Connections open at once. When all are taken a newcomer is still accepted and another connection is closed for
   * it, in shared-io/connection-table.ts's order (requests in progress only past busyGraceMs); only when none
   * qualifies is the newcomer closed.
   */
  maxConnections: 256,
  /** A request in progress for less than this is never closed to make room for a new connection. */
  busyGraceMs: 2_000,
  /**
   * An answer not written out to the client (its bytes accepted by the kernel) within this is cut, with its
   * connection: until then it counts against the gate (its place and its bytes). The API server waits 5 s at most.
   */
  answerDeadlineMs: 5_000,
  /** Reviews being read or answered at once (their first 64 KiB each: at most 8 MiB). */
  maxActiveReviews: 128,
  /** Bytes per review bounded by the count above; the API server's reviews are a few KiB. */
  freeBodyBytes: 64 * 1024,
  /** Request-body bytes beyond those held at once across all reviews (each body is at most maxBodyBytes, MAX_REVIEW_BYTES). */
  maxBufferedBytes: 8 * MIB,
  /** Pace of those bytes (bodies beyond 64 KiB): their buffers must not pile up faster than they are collected. */
  bodyBytesPerSecond: 32 * MIB,
  /** Reviews waiting for one of those places (each holds up to ~128 KiB of socket buffers); more get 429 at once. */
  maxWaitingReviews: 64,
  /** How long a review waits for a place before it gets 429. */
  maxWaitMs: 2_000,
  /** A TLS handshake must finish within this (Node's default is 120 s). */
  handshakeTimeoutMs: 5_000,
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: 15_000,
  /** How often request and header deadlines are checked (Node's default is 30 s, which stretched 10 s to 40). */
  connectionsCheckingIntervalMs: 1_000,
});
export type WebhookLimits = { -readonly [K in keyof typeof WEBHOOK_LIMITS]: number };

/** One config version's inputs to an admission. */
export interface AdmissionSnapshot {
  readonly config: InjectorConfig;
  /** That version's trust bundle (PEM); read per admission so a CA rotation reaches new pods at once. */
  bundlePem(): string | Promise<string>;
}

export interface InjectorWebhookOptions {
  /** host:port; "0.0.0.0:9443" in a pod (the API server dials the Service), port 0 in tests. */
  readonly listen: string;
  readonly certPem: string;
  readonly keyPem: string;
  /**
   * What one admission is made from, taken ONCE per admission: the sidecar settings and the source of the trust
   * bundle of the same config version. The standalone injector swaps its config when the file changes; reading the
   * settings and the bundle apart let a reload in between mix two versions in one pod (audit 32a F3).
   */
  readonly snapshot: () => AdmissionSnapshot;
  readonly logger?: InjectorLogger;
  /** Default /inject. The API server appends ?timeout=…, which is ignored. */
  readonly path?: string;
  /** Default MAX_REVIEW_BYTES; larger bodies get 413. */
  readonly maxBodyBytes?: number;
  /** Whole-request deadline (headers and body), default 10 s: the API server gives up after 5. */
  readonly requestTimeoutMs?: number;
  /**
   * Why `GET /ready` should answer 503 now (e.g. shutting down), or undefined when ready; absent: always ready. While
   * there is a reason every answer also carries `Connection: close`, so clients move to another replica.
   */
  readonly notReadyReason?: () => string | undefined;
  /** Defaults: WEBHOOK_LIMITS. */
  readonly limits?: Partial<WebhookLimits>;
  readonly timers?: Timers;
  readonly clock?: Clock;
  /** Times each review for its log line (`ms`): a sub-millisecond clock (common/precise-clock.ts) in production. */
  readonly preciseClock: Clock;
}

export interface InjectorWebhook {
  /** host:port actually bound (IPv6 in brackets). */
  readonly address: string;
  readonly port: number;
  /** Swaps the serving certificate for new handshakes; open connections keep theirs. */
  updateCertificate(certPem: string, keyPem: string): void;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
    /** The body was not read to its end: answer, then close the connection rather than drain it. */
    readonly close = false,
    /** A refusal of the request itself carries its code, first in the answer and in the log (audit 38b, F4). */
    readonly code?: ErrorCode,
  ) {
    super(message);
  }
}

const badReview = (message: string) => new HttpError(400, message, {}, false, 'TESSERA_ERR_INJECT_BAD_REVIEW');
const bodyTooLarge = (limit: number) => new HttpError(413, `body larger than ${limit} bytes`, {}, true, 'TESSERA_ERR_INJECT_TOO_LARGE');

/** The client closed the connection before its body ended: nothing to answer (the parser's refusal is logged). */
class ClientGone extends Error {}

const retryLater = { 'retry-after': '1' };

/**
 * The body as text. Each chunk is decoded as it arrives and dropped, rather than kept and concatenated: the chunks'
 * buffers live outside the JavaScript heap and are freed only by a later collection, so holding and copying them
 * doubled what a burst of large bodies left behind. JSON is UTF-8: other bytes are refused, not read as U+FFFD.
 */
function readBody(req: IncomingMessage, limit: number, pass: GatePass): Promise<string> {
  return new Promise((resolve, reject) => {
    const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
    const parts: string[] = [];
    let size = 0;
    const stop = (e: HttpError) => {
      req.removeAllListeners('data');
      req.pause();
      reject(e);
    };
    const notUtf8 = () => new HttpError(400, 'body is not UTF-8', {}, true, 'TESSERA_ERR_INJECT_BAD_REVIEW');
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) return stop(bodyTooLarge(limit));
      if (!pass.take(c.length)) return stop(new HttpError(503, 'the injector holds too many request bodies now; retry', retryLater, true));
      try {
        parts.push(decoder.decode(c, { stream: true }));
      } catch {
        stop(notUtf8());
      }
    });
    req.on('end', () => {
      try {
        resolve(parts.join('') + decoder.decode());
      } catch {
        reject(notUtf8());
      }
    });
    req.on('error', (e) => reject(new ClientGone(e.message)));
    // Gone while it waited for a place: its 'error' has been emitted already.
    if (req.destroyed) reject(new ClientGone('closed while waiting'));
  });
}

/** The Content-Length the client declared, 0 when none (chunked). Node has already refused malformed ones. */
function declaredLength(req: IncomingMessage): number {
  const n = Number(req.headers['content-length'] ?? 0);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

export async function startInjectorWebhook(opts: InjectorWebhookOptions): Promise<InjectorWebhook> {
  const addr = parseAddress(opts.listen);
  if (!addr) throw new TesseraError('TESSERA_ERR_INJECT_BAD_CONFIG', `injector.listen: "${opts.listen}" is not host:port`, { key: 'injector.listen' });
  const path = opts.path ?? '/inject';
  const limit = opts.maxBodyBytes ?? MAX_REVIEW_BYTES;
  const limits: WebhookLimits = { ...WEBHOOK_LIMITS, ...(opts.limits ?? {}) };
  const timers = opts.timers ?? realTimers;
  const log = opts.logger;
  // TLS 1.2 with forward-secret AEAD suites only (Node's default list also has CBC suites with SHA-1 MACs).
  const tlsBase = { minVersion: 'TLSv1.2' as const, ciphers: TLS_CIPHERS };
  const clock = opts.clock ?? systemClock;
  const gate = new AdmissionGate({
    maxActive: limits.maxActiveReviews,
    maxBytes: limits.maxBufferedBytes,
    freeBytes: limits.freeBodyBytes,
    maxWaiting: limits.maxWaitingReviews,
    maxWaitMs: limits.maxWaitMs,
    bytesPerSecond: limits.bodyBytesPerSecond,
    timers,
    clock,
  });
  const refusals = new RefusalLog({ warn: (o, m) => log?.warn(o, m), clock, timers });
  const draining = () => opts.notReadyReason?.() !== undefined;
  const closeIfDraining = (): Record<string, string> => (draining() ? { connection: 'close' } : {});

  /**
   * Cuts an answer (and its connection) that is not written out within answerDeadlineMs: a client that sends
   * reviews and never reads the answers must not keep them in this process (audit 5, N2).
   */
  function deliverWithin(res: ServerResponse): void {
    if (res.writableFinished) return;
    const timer = timers.setTimeout(() => {
      refusals.record({ status: 0, reason: `answer not read within ${limits.answerDeadlineMs} ms`, ...(res.socket?.remoteAddress ? { remote: res.socket.remoteAddress } : {}) });
      res.destroy();
    }, limits.answerDeadlineMs);
    const clear = () => timers.clearTimeout(timer);
    res.once('finish', clear);
    res.once('close', clear);
  }

  function sendText(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...closeIfDraining(), ...headers });
    res.end(`${text}\n`);
    deliverWithin(res);
  }

  async function review(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = opts.preciseClock.nowMs();
    const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    // 400, as errors.md catalogues INJECT_BAD_REVIEW for every one of its causes (controller-runtime's webhooks answer
    // this one 400 too); the API server, the only client, always sends JSON and reads any non-2xx as a call failure.
    if (type !== 'application/json') throw new HttpError(400, 'content-type must be application/json', {}, false, 'TESSERA_ERR_INJECT_BAD_REVIEW');
    const declared = declaredLength(req);
    if (declared > limit) throw bodyTooLarge(limit);
    const pass = await gate.acquire(declared);
    if (!pass) throw new HttpError(429, 'the injector is busy with other reviews; retry', retryLater, true);
    // The place and its bytes (body, then answer) are held until the answer has been written out or the connection
    // is gone, not only until res.end(): answers that clients do not read stay within the gate (audit 5, N2).
    res.once('close', () => pass.release());
    if (res.destroyed) pass.release();
    {
      const body = await readBody(req, limit, pass);
      // The bundle is read before the body is parsed, so that no parsed review is ever held across an await: at
      // most one exists at a time, however many reviews are in flight. The settings come from the same snapshot.
      const snapshot = opts.snapshot();
      let bundlePem: string | undefined;
      let bundleError: unknown;
      try {
        bundlePem = await snapshot.bundlePem();
      } catch (e) {
        bundleError = e;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        throw badReview('body is not JSON');
      }
      let request: AdmissionRequest;
      try {
        request = readAdmissionReview(parsed);
      } catch (e) {
        throw badReview(isTesseraError(e) ? e.message : 'malformed AdmissionReview');
      }
      let outcome: AdmissionOutcome;
      if (bundlePem === undefined) {
        // The bundle source failed: fail closed, since a sidecar without a trust anchor could never start.
        log?.error({ uid: request.uid, err: describeError(bundleError) }, 'injector: trust bundle unavailable');
        outcome = { response: deny(request.uid, 500, 'tessera injector: no trust bundle available', 'InternalError'), decision: 'denied', reason: 'no-bundle' };
      } else {
        outcome = admitPod(request, { config: snapshot.config, bundlePem });
      }
      const entry = {
        uid: request.uid,
        namespace: request.namespace,
        pod: podName(request.object),
        decision: outcome.decision,
        reason: outcome.reason,
        dryRun: request.dryRun === true,
        ms: opts.preciseClock.nowMs() - started,
      };
      const answer = reviewResponseBody(outcome.response);
      // Counted like body bytes: beyond the review's free share the answer takes budget until it is written out.
      // Logged once it goes out: an answer refused here is the 503's (rate-limited) line, not a decision.
      if (!pass.take(Buffer.byteLength(answer))) throw new HttpError(503, 'the injector holds too many answers now; retry', retryLater, true);
      if (outcome.internalError !== undefined) log?.error({ ...entry, err: describeError(outcome.internalError) }, 'injector: admission failed');
      else if (outcome.decision === 'denied') log?.warn(entry, 'injector: admission denied');
      else log?.info(entry, 'injector: admission');
      res.writeHead(200, { 'content-type': 'application/json', ...closeIfDraining() });
      res.end(answer);
      deliverWithin(res);
    }
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const pathname = (req.url ?? '').split('?')[0];
    if (pathname === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) {
      sendText(res, 200, 'ok');
      return;
    }
    if (pathname === '/ready' && (req.method === 'GET' || req.method === 'HEAD')) {
      const reason = opts.notReadyReason?.();
      sendText(res, reason === undefined ? 200 : 503, reason ?? 'ready');
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
        refusals.record({ status: e.status, reason: e.message, ...(e.code ? { code: e.code } : {}), ...(req.socket.remoteAddress ? { remote: req.socket.remoteAddress } : {}) });
        sendText(res, e.status, e.code ? `${e.code}: ${e.message}` : e.message, { ...e.headers, ...(e.close ? { connection: 'close' } : {}) });
        if (e.close) res.on('finish', () => req.socket.destroy());
        return;
      }
      if (e instanceof ClientGone) return;
      log?.error({ err: describeError(e) }, 'injector: request failed');
      sendText(res, 500, 'internal error');
    });
  }

  const server: Server = createServer(
    {
      ...tlsBase,
      cert: opts.certPem,
      key: opts.keyPem,
      handshakeTimeout: limits.handshakeTimeoutMs,
      requestTimeout: opts.requestTimeoutMs ?? 10_000,
      headersTimeout: Math.min(opts.requestTimeoutMs ?? 10_000, 10_000),
      connectionsCheckingInterval: limits.connectionsCheckingIntervalMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      maxHeaderSize: 16 * 1024,
    },
    handle,
  );
  server.maxHeadersCount = 64;
  // The connection cap (shared-io/listener-connections.ts): a full table closes the connection least likely to be
  // the API server's to make room, rather than refusing the newcomer. Pipelined reviews are answered in turn.
  const guard = guardListenerConnections(server, {
    max: limits.maxConnections,
    busyGraceMs: limits.busyGraceMs,
    clock,
    tls: true,
    allowPipelining: true,
    onRefused: (reason, { state, remote }) => {
      if (reason === 'evicted') {
        refusals.record({ status: 0, reason: `connection closed to make room for a new one (it was ${state === 'handshake' ? 'in its TLS handshake' : state === 'idle' ? 'idle' : 'slow to send its request'}): ${limits.maxConnections} connections open` });
      } else if (reason === 'over_cap') {
        refusals.record({ status: 0, reason: `connection refused: ${limits.maxConnections} connections open, all with requests in progress`, ...(remote ? { remote } : {}) });
      }
    },
  });
  // No TLS 1.2 renegotiation, as on every other TLS listener (a full handshake's CPU for a few bytes from the client;
  // Node allowed three per connection, and logged the fourth as a refused request: audit 62i F1).
  server.on('secureConnection', (socket: TLSSocket) => refuseRenegotiation(socket, () => refusals.record({ status: 0, reason: 'TLS renegotiation refused', ...(socket.remoteAddress ? { remote: socket.remoteAddress } : {}) })));
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: { remoteAddress?: string }) => {
    // One closed to make room in its handshake was recorded as such already.
    if (guard.closedForRoom(socket)) return;
    refusals.record({ status: 0, reason: `TLS handshake failed: ${err.code ?? err.message}`, ...(socket.remoteAddress ? { remote: socket.remoteAddress } : {}) });
  });
  // What Node does by default for a request it cannot parse or that timed out (400, 408, 431, then close), plus a
  // log line: a listener replaces the default, so the answer is written here.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex & { remoteAddress?: string; _httpMessage?: { headersSent?: boolean } }) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    refusals.record({ status, reason: err.code ?? 'malformed request', ...(socket.remoteAddress ? { remote: socket.remoteAddress } : {}) });
    if (!socket._httpMessage?.headersSent) socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\n\r\n`);
    socket.destroy();
  });

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
        const force = timers.setTimeout(() => server.closeAllConnections(), 5_000);
        server.close(() => {
          timers.clearTimeout(force);
          refusals.flush();
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}

/** The pod's name for the log line, only when it is a string (the object is the client's). */
function podName(object: unknown): string | undefined {
  if (typeof object !== 'object' || object === null) return undefined;
  const meta = (object as { metadata?: unknown }).metadata;
  if (typeof meta !== 'object' || meta === null) return undefined;
  const { name, generateName } = meta as { name?: unknown; generateName?: unknown };
  if (typeof name === 'string') return name.slice(0, 253);
  return typeof generateName === 'string' ? `${generateName.slice(0, 253)}*` : undefined;
}
