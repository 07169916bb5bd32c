// The access log: one JSON line per proxied HTTP request or TCP connection, batched and written off the event
// loop (shared-io/fd-writer.ts) to a destination that survives its outages (access-log-destination.ts). Only the
// fields below are written (never headers); paths lose their query.
import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Clock } from '../../../common/clock.js';
import { realTimers, type Timers } from '../../../shared-io/timers.js';
import { AccessLogDestination, type AccessLogProblem, type AccessLogResumed } from './access-log-destination.js';

export interface AccessEntry {
  /** Epoch milliseconds (a fractional reading is floored: the field is whole milliseconds); the injected clock's time when absent. */
  time?: number;
  requestId: string;
  direction: string;
  protocol: string;
  /** The caller's SPIFFE ID (null: no verified identity, e.g. an edge client without a certificate). */
  peer?: string | null;
  /** The caller's IP address: only for unauthenticated (plaintext) callers, whom no SPIFFE ID names. */
  clientIp?: string;
  method?: string;
  path?: string;
  status?: number;
  /** gRPC exchanges: the grpc-status sent to the client (0–16); absent without one (docs/metrics.md). */
  grpcStatus?: number;
  decision?: string;
  policy?: string | null;
  bytesIn?: number;
  bytesOut?: number;
  durationMs: number;
  upstream?: string;
  resumed?: boolean;
  error?: string;
  /** Why the exchange ended early, Envoy response_flags style (stream_idle_timeout, downstream_closed, ...). */
  responseFlags?: string;
  traceId?: string;
}

export interface AccessLog {
  /** False for 'off': callers skip building entries on the hot path. */
  readonly enabled: boolean;
  write(e: AccessEntry): void;
  /** Resolves once every line written so far has reached the destination. */
  flush(): Promise<void>;
  /**
   * Flushes, then closes the destination (never closes stdout itself). Writes after close are dropped. Bounded:
   * lines the destination has not taken within `closeTimeoutMs` are counted as dropped and the close resolves.
   */
  close(): Promise<void>;
  /** Lines dropped because the destination could not keep up (buffer full), failed, or had no reader. */
  dropped(): number;
}

export interface AccessLogOptions {
  /**
   * 'stdout', 'off', or a file path (opened for append; the directory must exist). A FIFO is opened non-blocking:
   * without a reader the log starts in an outage and waits for one.
   */
  readonly destination: 'stdout' | 'off' | string;
  readonly clock: Clock;
  /** An outage began (a write failed, or a FIFO has no reader): lines are dropped until it ends. Once per outage. */
  readonly onProblem?: (p: AccessLogProblem) => void;
  /** The outage ended: a batch was written whole again. */
  readonly onResume?: (r: AccessLogResumed) => void;
  /** How often the destination is reopened during an outage (default 1000 ms). */
  readonly reopenMs?: number;
  /** Bytes buffered while the destination is slow before lines are dropped (default 16 MiB). */
  readonly maxBufferBytes?: number;
  /** Longest time a line waits in the batch before it is written (default 1000 ms). */
  readonly flushIntervalMs?: number;
  /** Batch size: a batch is handed to the destination when the next line would not fit (default 64 KiB). */
  readonly batchBytes?: number;
  /**
   * Other processes write to the same destination (the workers of `workers: N` share the proxy's stdout). A pipe,
   * tty or socket then gets batches of at most PIPE_BUF (4 KiB), the size a pipe takes in one piece, so lines of
   * different processes never interleave mid-line; a regular file opened for append needs no such limit.
   */
  readonly sharedDestination?: boolean;
  /** The flush, retry and reopen timers run here (default: the real timers, unref'd). */
  readonly timers?: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
  /**
   * How long close() waits for the destination to take what is queued (default 2000 ms). A stdout pipe that
   * nobody reads (a stalled log collector, a parent that stopped reading) would otherwise hold the proxy's shutdown
   * open forever after its listeners had drained.
   */
  readonly closeTimeoutMs?: number;
}

export const MAX_PATH_CHARS = 256;
/**
 * Batch size handed to the destination in one write. Each write is a round trip through libuv's thread pool (a
 * worker thread woken, then the event loop); at 4 KiB, about 16 lines a write, those round trips were half of
 * what the log cost per request (docs/metrics.md, "Access log").
 */
export const BATCH_BYTES = 64 * 1024;
/** POSIX: a write of at most this many bytes to a pipe is never interleaved with other writers' data. */
export const PIPE_BUF = 4096;
const MAX_TEXT_CHARS = 256;
const MAX_SHORT_CHARS = 32;

/** The request path without its query string or fragment (they may carry tokens), capped in length. */
export function sanitizePath(path: string): string {
  let end = path.length;
  const q = path.indexOf('?');
  if (q !== -1) end = q;
  const h = path.indexOf('#');
  if (h !== -1 && h < end) end = h;
  return end > MAX_PATH_CHARS ? path.slice(0, MAX_PATH_CHARS) : end === path.length ? path : path.slice(0, end);
}

const cap = (s: string, n: number) => (s.length > n ? s.slice(0, n) : s);

const OFF: AccessLog = Object.freeze({
  enabled: false,
  write() {},
  flush: () => Promise.resolve(),
  close: () => Promise.resolve(),
  dropped: () => 0,
});

export function createAccessLog(opts: AccessLogOptions): AccessLog {
  if (opts.destination === 'off') return OFF;
  const timers = opts.timers ?? realTimers;
  // Opened here, synchronously, so a bad path fails start-up with a clear error instead of a later event.
  const dest = new AccessLogDestination({
    destination: opts.destination,
    maxQueuedBytes: opts.maxBufferBytes ?? 16 * 1024 * 1024,
    timers,
    reopenMs: opts.reopenMs ?? 1_000,
    ...(opts.onProblem ? { onProblem: opts.onProblem } : {}),
    ...(opts.onResume ? { onResume: opts.onResume } : {}),
  });
  const batchBytes = opts.batchBytes ?? (opts.sharedDestination === true && !dest.isFile ? PIPE_BUF : BATCH_BYTES);
  let closed = false;
  // Lines are batched here and handed to the writer per `batchBytes` or per flush interval. A crash can lose the
  // unflushed tail (at most one interval), as with Envoy's access-log flush interval. Each line is encoded into the
  // batch's buffer as it comes: a batch kept as one long string cost more to flatten and encode at hand-off than
  // the lines had cost to build.
  let batch: Buffer | undefined; // a new one per batch: the writer holds it until written
  let used = 0;
  let batchLines = 0;
  const handOff = () => {
    if (batch === undefined) return;
    dest.write(batch.subarray(0, used), batchLines);
    batch = undefined;
    used = 0;
    batchLines = 0;
  };
  // A flush timer only while lines wait: a proxy with no traffic is not woken every interval to find none.
  const flushMs = opts.flushIntervalMs ?? 1_000;
  let timer: unknown;
  const onTimer = () => {
    timer = undefined;
    handOff();
  };
  const clock = opts.clock;

  return {
    enabled: true,
    write(e) {
      // During an outage the line is not even built: it could only be dropped.
      if (closed || !dest.open) {
        dest.drop(1);
        return;
      }
      // Fields are copied one by one: an object with extra properties (headers, bodies) cannot leak through.
      const line = formatAccessLine(e, e.time ?? clock.nowMs());
      const bytes = Buffer.byteLength(line);
      if (batch !== undefined && used + bytes > batch.length) handOff();
      batch ??= Buffer.allocUnsafe(Math.max(batchBytes, bytes));
      used += batch.write(line, used);
      batchLines++;
      if (used === batch.length) handOff();
      else if (timer === undefined) timer = timers.setTimeout(onTimer, flushMs);
    },
    flush() {
      handOff();
      return dest.idle();
    },
    async close() {
      if (closed) return;
      handOff();
      closed = true;
      if (timer !== undefined) timers.clearTimeout(timer);
      timer = undefined;
      // Counted as dropped: every batch not written whole by the bound. A pipe may have taken part of one already,
      // so a few of these lines can have arrived after all.
      await dest.close(opts.closeTimeoutMs ?? 2_000);
    },
    dropped: () => dest.dropped,
  };
}

/**
 * The access log's outages in the operational log: a warning when one begins (the errno code and the destination,
 * never a line's contents), a line when it ends with how many lines it cost.
 */
export function accessLogReports(log: Pick<Logger, 'warn' | 'info'>): Pick<AccessLogOptions, 'onProblem' | 'onResume'> {
  return {
    onProblem: (p) => {
      const why = p.code === 'ENXIO' ? 'waiting for a reader (a FIFO nobody has open)' : 'cannot be written';
      log.warn(p, `access log ${why}: lines are dropped until it takes them again (reopened every second)`);
    },
    onResume: (r) => {
      log.info(r, 'access log resumed');
    },
  };
}

// What JSON.stringify escapes in a string: '"', '\\', C0 controls and UTF-16 surrogates (lone ones; paired ones
// merely take the slow path too).
// biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what it looks for
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
/** A JSON string literal: most values (ids, directions, paths) need no escaping, and skip JSON.stringify's call. */
export const jsonString = (v: string) => (NEEDS_ESCAPE.test(v) ? JSON.stringify(v) : `"${v}"`);

/**
 * One access-log line, built by hand: a generic serializer (pino's) cost several µs per line on the hot path;
 * this is a handful of string appends. Absent fields are left out; strings are JSON-escaped.
 */
export function formatAccessLine(e: AccessEntry, time: number): string {
  let s = `{"log":"access","time":${Math.floor(time)},"requestId":${jsonString(e.requestId)},"direction":${jsonString(e.direction)},"protocol":${jsonString(e.protocol)}`;
  if (e.peer !== undefined) s += `,"peer":${e.peer === null ? 'null' : jsonString(e.peer)}`;
  if (e.clientIp !== undefined) s += `,"clientIp":${jsonString(e.clientIp)}`;
  if (e.method !== undefined) s += `,"method":${jsonString(cap(e.method, MAX_SHORT_CHARS))}`;
  if (e.path !== undefined) s += `,"path":${jsonString(sanitizePath(e.path))}`;
  if (e.status !== undefined) s += `,"status":${e.status}`;
  if (e.grpcStatus !== undefined) s += `,"grpcStatus":${e.grpcStatus}`;
  if (e.decision !== undefined) s += `,"decision":${jsonString(e.decision)}`;
  if (e.policy !== undefined) s += `,"policy":${e.policy === null ? 'null' : jsonString(e.policy)}`;
  if (e.bytesIn !== undefined) s += `,"bytesIn":${e.bytesIn}`;
  if (e.bytesOut !== undefined) s += `,"bytesOut":${e.bytesOut}`;
  s += `,"durationMs":${Math.round(e.durationMs * 1000) / 1000}`;
  if (e.upstream !== undefined) s += `,"upstream":${jsonString(e.upstream)}`;
  if (e.resumed !== undefined) s += `,"resumed":${e.resumed}`;
  if (e.error !== undefined) s += `,"error":${jsonString(cap(e.error, MAX_TEXT_CHARS))}`;
  if (e.responseFlags !== undefined) s += `,"responseFlags":${jsonString(cap(e.responseFlags, MAX_SHORT_CHARS))}`;
  if (e.traceId !== undefined) s += `,"traceId":${jsonString(e.traceId)}`;
  return `${s}}\n`;
}

/** A random request id (UUID v4); needs no state. `createRequestIds` is cheaper on the hot path. */
export function newRequestId(): string {
  return randomUUID();
}

/** Request ids `<per-generator random prefix>-<counter in base 36>`: unique per process run, nearly free. */
export function createRequestIds(): () => string {
  const prefix = randomBytes(6).toString('base64url');
  let n = 0;
  return () => `${prefix}-${(n++).toString(36)}`;
}
