// The access log: one JSON line per proxied HTTP request or TCP connection, batched and handed to pino's
// asynchronous file destination. Only the fields below are written (never headers); paths lose their query.
import { randomBytes, randomUUID } from 'node:crypto';
import { openSync } from 'node:fs';
import pino from 'pino';
import type { Clock } from '../../../common/clock.js';
import { TesseraError } from '../../../common/errors.js';
import { realTimers, type Timers } from '../../../shared-io/timers.js';

export interface AccessEntry {
  /** Epoch milliseconds; the injected clock's time when absent. */
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
  /** Lines dropped because the destination could not keep up (buffer full) or failed. */
  dropped(): number;
}

export interface AccessLogOptions {
  /** 'stdout', 'off', or a file path (opened for append; the directory must exist). */
  readonly destination: 'stdout' | 'off' | string;
  readonly clock: Clock;
  /** A destination write error (the log keeps dropping lines after it); default: ignored. */
  readonly onError?: (err: Error) => void;
  /** Bytes buffered while the destination is slow before lines are dropped (default 16 MiB). */
  readonly maxBufferBytes?: number;
  /** Longest time a line waits in the batch before it is written (default 1000 ms). */
  readonly flushIntervalMs?: number;
  /** The flush timer runs here (default: the real timers, unref'd). */
  readonly timers?: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
  /**
   * How long close() waits for the destination to take what is queued (default 2000 ms). A stdout pipe that
   * nobody reads (a stalled log collector, a parent that stopped reading) would otherwise hold the proxy's shutdown
   * open forever after its listeners had drained.
   */
  readonly closeTimeoutMs?: number;
}

export const MAX_PATH_CHARS = 256;
/** Batch size handed to the destination in one write. */
const BATCH_BYTES = 4096;
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
  let fd = 1;
  if (opts.destination !== 'stdout') {
    // Opened here, synchronously, so a bad path fails start-up with a clear error instead of a later event.
    try {
      fd = openSync(opts.destination, 'a', 0o640);
    } catch (e) {
      throw new TesseraError('TESSERA_ERR_ACCESS_LOG_UNWRITABLE', `Cannot open access log ${opts.destination}: ${(e as Error).message}`, { path: opts.destination }, { cause: e });
    }
  }
  const dest = pino.destination({ dest: fd, sync: false, maxLength: opts.maxBufferBytes ?? 16 * 1024 * 1024 });
  let dropped = 0;
  let failed = false;
  let closed = false;
  // Lines are batched here and handed to the async destination per BATCH_BYTES or per flush interval: one
  // write(2) per few KiB halves the per-line cost measured with one write per line. A crash can lose the
  // unflushed tail (at most one interval), as with Envoy's access-log flush interval.
  let batch = '';
  let batchLines = 0;
  /** Batches handed to the destination and not yet written whole to the OS, oldest first ('write' says how far). */
  const flying: { bytes: number; readonly lines: number }[] = [];
  let pending = false;
  let waiters: (() => void)[] = [];
  const settle = () => {
    pending = false;
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const handOff = () => {
    if (batch === '' || failed) return;
    const b = batch;
    batch = '';
    flying.push({ bytes: Buffer.byteLength(b), lines: batchLines });
    batchLines = 0;
    pending = true;
    dest.write(b);
  };
  // A flush timer only while lines wait: a proxy with no traffic is not woken every interval to find none.
  const flushMs = opts.flushIntervalMs ?? 1_000;
  const timers = opts.timers ?? realTimers;
  let timer: unknown;
  const onTimer = () => {
    timer = undefined;
    handOff();
  };
  // 'drain': the destination's writer is idle and its buffer empty, so every handed-off batch reached the OS.
  dest.on('drain', () => {
    flying.length = 0;
    settle();
  });
  dest.on('write', (n: number) => {
    while (n > 0 && flying.length > 0) {
      const f = flying[0]!;
      if (n < f.bytes) {
        f.bytes -= n;
        return;
      }
      n -= f.bytes;
      flying.shift();
    }
  });
  // Emitted from within dest.write(), for the batch just handed off.
  dest.on('drop', (data: string | Buffer) => {
    dropped += data.toString().split('\n').length - 1;
    flying.pop();
  });
  // Without a listener an async write error would crash the process; the proxy keeps serving instead.
  dest.on('error', (err: Error) => {
    failed = true;
    settle();
    opts.onError?.(err);
  });
  const clock = opts.clock;

  return {
    enabled: true,
    write(e) {
      if (closed || failed) {
        dropped++;
        return;
      }
      // Fields are copied one by one: an object with extra properties (headers, bodies) cannot leak through.
      batch += formatAccessLine(e, e.time ?? clock.nowMs());
      batchLines++;
      if (batch.length >= BATCH_BYTES) handOff();
      else if (timer === undefined) timer = timers.setTimeout(onTimer, flushMs);
    },
    flush() {
      handOff();
      if (!pending || closed || failed) return Promise.resolve();
      return new Promise<void>((resolve) => waiters.push(resolve));
    },
    close() {
      if (closed) return Promise.resolve();
      handOff();
      closed = true;
      if (timer !== undefined) timers.clearTimeout(timer);
      timer = undefined;
      return new Promise<void>((resolve) => {
        // After a write error the destination may never emit 'close'; end() then only releases the fd.
        if (failed) {
          dest.destroy();
          resolve();
          return;
        }
        const giveUp = timers.setTimeout(() => {
          // Counted as dropped: every batch not known to be written whole. A write still blocked may have put
          // part of its buffer in a pipe already, so a few of these lines can have arrived after all.
          for (const f of flying.splice(0)) dropped += f.lines;
          settle();
          dest.destroy();
          resolve();
        }, opts.closeTimeoutMs ?? 2_000);
        dest.once('close', () => {
          timers.clearTimeout(giveUp);
          settle();
          resolve();
        });
        dest.end();
      });
    },
    dropped: () => dropped,
  };
}

const str = (v: string) => JSON.stringify(v);

/**
 * One access-log line, built by hand: a generic serializer (pino's) cost several µs per line on the hot path;
 * this is a handful of string appends. Absent fields are left out; strings are JSON-escaped.
 */
export function formatAccessLine(e: AccessEntry, time: number): string {
  let s = `{"log":"access","time":${time},"requestId":${str(e.requestId)},"direction":${str(e.direction)},"protocol":${str(e.protocol)}`;
  if (e.peer !== undefined) s += `,"peer":${e.peer === null ? 'null' : str(e.peer)}`;
  if (e.clientIp !== undefined) s += `,"clientIp":${str(e.clientIp)}`;
  if (e.method !== undefined) s += `,"method":${str(cap(e.method, MAX_SHORT_CHARS))}`;
  if (e.path !== undefined) s += `,"path":${str(sanitizePath(e.path))}`;
  if (e.status !== undefined) s += `,"status":${e.status}`;
  if (e.decision !== undefined) s += `,"decision":${str(e.decision)}`;
  if (e.policy !== undefined) s += `,"policy":${e.policy === null ? 'null' : str(e.policy)}`;
  if (e.bytesIn !== undefined) s += `,"bytesIn":${e.bytesIn}`;
  if (e.bytesOut !== undefined) s += `,"bytesOut":${e.bytesOut}`;
  s += `,"durationMs":${Math.round(e.durationMs * 1000) / 1000}`;
  if (e.upstream !== undefined) s += `,"upstream":${str(e.upstream)}`;
  if (e.resumed !== undefined) s += `,"resumed":${e.resumed}`;
  if (e.error !== undefined) s += `,"error":${str(cap(e.error, MAX_TEXT_CHARS))}`;
  if (e.responseFlags !== undefined) s += `,"responseFlags":${str(cap(e.responseFlags, MAX_SHORT_CHARS))}`;
  if (e.traceId !== undefined) s += `,"traceId":${str(e.traceId)}`;
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
