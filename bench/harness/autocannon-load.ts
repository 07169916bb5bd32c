// Keep-alive HTTP/1.1 load with autocannon (programmatic), mTLS when asked; latencies recorded at µs precision.
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { LatencyHistogram, type LatencySummary } from './latency-histogram.js';

/** TLS options for an https URL: a client certificate for mTLS, or none (plain TLS, e.g. to an edge listener). */
export interface LoadTls {
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  readonly ca?: string | Buffer;
}

export interface LoadOptions {
  readonly url: string;
  readonly connections: number;
  readonly durationMs: number;
  /** Requests per second over all connections; absent = as fast as responses come back (closed loop). */
  readonly rateRps?: number;
  readonly pipelining?: number;
  readonly tls?: LoadTls;
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  readonly timeoutSeconds?: number;
  readonly signal?: AbortSignal;
  /** About once a second: elapsed time and responses so far. */
  readonly onTick?: (elapsedMs: number, responses: number) => void;
  /** Every response, with its latency and its completion time (performance.now()). */
  readonly onResponse?: (statusCode: number, latencyMs: number, atMs: number) => void;
}

export interface LoadResult {
  readonly elapsedMs: number;
  /** Completed responses of any status. */
  readonly responses: number;
  readonly ok2xx: number;
  readonly non2xx: number;
  readonly statusCounts: Readonly<Record<string, number>>;
  /** Connections that failed: refused, reset, TLS failure, or closed by the server with a request unanswered. */
  readonly connectionErrors: number;
  readonly timeouts: number;
  /** connectionErrors + timeouts. */
  readonly errors: number;
  /** (non-2xx + connection errors + timeouts) / (responses + connection errors + timeouts); 0 when nothing was attempted. */
  readonly errorRate: number;
  readonly reqPerSec: number;
  readonly latency: LatencySummary;
  readonly errorSamples: readonly string[];
}

export async function runAutocannon(o: LoadOptions): Promise<LoadResult> {
  const hist = new LatencyHistogram();
  const statusCounts: Record<string, number> = {};
  const errorSamples: string[] = [];
  let responses = 0;
  let ok2xx = 0;
  let connectionErrors = 0;
  let timeouts = 0;
  const sample = (msg: string) => {
    if (errorSamples.length < 3 && !errorSamples.includes(msg)) errorSamples.push(msg);
  };
  const started = performance.now();
  // autocannon reports a rejected option only to this callback, and then never emits 'done'.
  let rejectRun: (e: Error) => void = () => {};
  const failed = new Promise<never>((_, reject) => {
    rejectRun = reject;
  });
  const instance = autocannon(
    {
      url: o.url,
      connections: o.connections,
      duration: o.durationMs / 1000,
      pipelining: o.pipelining ?? 1,
      timeout: o.timeoutSeconds ?? 10,
      // autocannon stops only on its sample tick (default every 1 s): a 1.5 s run would last 2 s, a 5 s run up to 6 s.
      sampleInt: 100,
      ...(o.rateRps ? { overallRate: o.rateRps } : {}),
      ...(o.tls ? { tlsOptions: { ...(o.tls.cert ? { cert: o.tls.cert } : {}), ...(o.tls.key ? { key: o.tls.key } : {}), ...(o.tls.ca ? { ca: o.tls.ca } : {}) } } : {}),
      ...(o.method ? { method: o.method as autocannon.Request['method'] } : {}),
      ...(o.headers ? { headers: { ...o.headers } } : {}),
      ...(o.body !== undefined ? { body: o.body } : {}),
      setupClient: (client: autocannon.Client) => watchClient(client as unknown as LoadClient, {
        connError: (e) => {
          connectionErrors++;
          sample(e.message.trim());
        },
        silentClose: () => {
          connectionErrors++;
          sample('the server closed the connection without answering (a refused TLS handshake looks like this)');
        },
        timeout: () => {
          timeouts++;
          sample('request timed out');
        },
      }),
    },
    (err) => {
      if (err) rejectRun(new Error(`autocannon refused the options: ${err.message}`));
    },
  );
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    responses++;
    const key = String(statusCode);
    statusCounts[key] = (statusCounts[key] ?? 0) + 1;
    if (statusCode >= 200 && statusCode < 300) {
      ok2xx++;
      hist.recordMs(responseTime);
    }
    o.onResponse?.(statusCode, responseTime, performance.now());
  });
  instance.on('tick', () => o.onTick?.(performance.now() - started, responses));
  const onAbort = () => instance.stop();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await Promise.race([new Promise<autocannon.Result>((resolve) => instance.on('done', resolve)), failed]);
    const elapsedMs = performance.now() - started;
    const attempts = responses + connectionErrors + timeouts;
    return {
      elapsedMs,
      responses,
      ok2xx,
      non2xx: responses - ok2xx,
      statusCounts,
      connectionErrors,
      timeouts,
      errors: connectionErrors + timeouts,
      errorRate: attempts === 0 ? 0 : (attempts - ok2xx) / attempts,
      // Against an HTTP/2-only server autocannon reports zero 2xx without an error: the caller checks ok2xx.
      reqPerSec: ok2xx / (elapsedMs / 1000),
      latency: hist.summary(),
      errorSamples,
    };
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
  }
}

/** The parts of autocannon's per-connection client used here: its events and its current socket. */
interface LoadClient {
  readonly conn: NodeJS.EventEmitter | undefined;
  readonly destroyed: boolean;
  /** autocannon's queue of requests sent and not yet answered, each with its start time. */
  readonly pipelinedRequests?: { clear(): void };
  on(event: 'request' | 'response' | 'timeout', fn: () => void): void;
  on(event: 'connError', fn: (e: Error) => void): void;
}

/**
 * Counts each connection failure once, and keeps the latencies honest across reconnects (below). autocannon counts socket errors and timeouts, but when the server closes
 * the connection without an error (a TLS 1.3 server refusing the client certificate does: the client saw its
 * handshake finish, then only an end) it silently reconnects: that close, with a request unanswered, is a failure too.
 */
function watchClient(client: LoadClient, on: { connError(e: Error): void; silentClose(): void; timeout(): void }): void {
  // Per socket: autocannon's own 'end' handler runs first and already opens the next socket.
  let current: { socket: NodeJS.EventEmitter | undefined; unanswered: number } = { socket: undefined, unanswered: 0 };
  client.on('request', () => {
    if (client.conn !== current.socket) {
      // A new socket: what the old one left unanswered will never be answered. autocannon keeps those requests in
      // its queue when the server closed the socket (its own reconnects clear it), and would time each later answer
      // against the oldest of them: latencies 100× too long. Emitted before the new request joins the queue.
      if (current.socket !== undefined) client.pipelinedRequests?.clear();
      const state = { socket: client.conn, unanswered: 0 };
      current = state;
      // 'end' comes only from the peer: autocannon's own destroy (timeout, stop) emits none.
      state.socket?.once('end', () => {
        if (state.unanswered > 0 && !client.destroyed) on.silentClose();
      });
    }
    current.unanswered++;
  });
  client.on('response', () => {
    current.unanswered = Math.max(0, current.unanswered - 1);
  });
  client.on('connError', (e) => {
    // Its unanswered requests are this error, not also a silent close.
    current.unanswered = 0;
    on.connError(e);
  });
  client.on('timeout', () => on.timeout());
}
