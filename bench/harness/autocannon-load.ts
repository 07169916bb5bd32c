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
  /** Transport errors (refused, reset, TLS failure) and timeouts. */
  readonly errors: number;
  readonly timeouts: number;
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
  let errors = 0;
  const started = performance.now();
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
    },
    () => {},
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
  instance.on('reqError', (err: Error) => {
    errors++;
    const msg = err.message.trim();
    if (errorSamples.length < 3 && !errorSamples.includes(msg)) errorSamples.push(msg);
  });
  instance.on('tick', () => o.onTick?.(performance.now() - started, responses));
  const onAbort = () => instance.stop();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const result = await new Promise<autocannon.Result>((resolve) => instance.on('done', resolve));
    const elapsedMs = performance.now() - started;
    return {
      elapsedMs,
      responses,
      ok2xx,
      non2xx: responses - ok2xx,
      statusCounts,
      errors: errors,
      timeouts: result.timeouts,
      // Against an HTTP/2-only server autocannon reports zero 2xx without an error: the caller checks ok2xx.
      reqPerSec: ok2xx / (elapsedMs / 1000),
      latency: hist.summary(),
      errorSamples,
    };
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
  }
}
