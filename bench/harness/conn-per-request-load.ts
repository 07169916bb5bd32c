// Closed-loop load with a NEW connection per request (plaintext or mTLS): what autocannon cannot do reliably.
// (autocannon's reconnectRate drops the response it reconnects on, and `Connection: close` races its next write.)
import { connect as netConnect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { type SecureContext, connect as tlsConnect } from 'node:tls';
import { LatencyHistogram } from './latency-histogram.js';
import type { LoadOutcome } from './load-outcome.js';

export interface ConnPerRequestOptions {
  readonly host: string;
  readonly port: number;
  readonly connections: number;
  readonly durationMs: number;
  readonly path?: string;
  /** mTLS: a cached SecureContext (client certificate + trusted root); full handshakes, no resumption. */
  readonly tls?: { readonly secureContext: SecureContext; readonly servername?: string };
  readonly signal?: AbortSignal;
  readonly onTick?: (elapsedMs: number, responses: number) => void;
}

export type ConnPerRequestResult = LoadOutcome;

/** One request on one fresh connection; resolves with the status code (0 on a transport error). */
function oneRequest(o: ConnPerRequestOptions, request: Buffer): Promise<{ status: number; error?: string }> {
  return new Promise((resolve) => {
    let sock: Socket;
    let data = '';
    let done = false;
    const finish = (status: number, error?: string) => {
      if (done) return;
      done = true;
      sock.destroy();
      resolve(error === undefined ? { status } : { status, error });
    };
    const send = () => sock.write(request);
    if (o.tls) {
      sock = tlsConnect({ host: o.host, port: o.port, secureContext: o.tls.secureContext, servername: o.tls.servername, rejectUnauthorized: false }, send);
    } else {
      sock = netConnect({ host: o.host, port: o.port }, send);
    }
    sock.setEncoding('latin1');
    sock.on('data', (chunk: string) => {
      data += chunk;
    });
    sock.on('end', () => {
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(data);
      finish(m ? Number(m[1]) : 0, m ? undefined : 'connection closed without a response');
    });
    sock.on('error', (e) => finish(0, e.message));
    sock.setTimeout(10_000, () => finish(0, 'timeout'));
  });
}

export async function runConnPerRequest(o: ConnPerRequestOptions): Promise<ConnPerRequestResult> {
  const request = Buffer.from(`GET ${o.path ?? '/'} HTTP/1.1\r\nHost: ${o.host}:${o.port}\r\nConnection: close\r\n\r\n`, 'latin1');
  const hist = new LatencyHistogram();
  const errorSamples: string[] = [];
  let responses = 0;
  let ok2xx = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + o.durationMs;
  let nextTick = started + 1000;
  const loop = async () => {
    while (performance.now() < deadline && !o.signal?.aborted) {
      const t0 = performance.now();
      const r = await oneRequest(o, request);
      const t1 = performance.now();
      if (r.status === 0) {
        errors++;
        if (errorSamples.length < 3 && r.error && !errorSamples.includes(r.error.trim())) errorSamples.push(r.error.trim());
        continue;
      }
      responses++;
      if (r.status >= 200 && r.status < 300) {
        ok2xx++;
        hist.recordMs(t1 - t0);
      }
      if (t1 >= nextTick) {
        nextTick += 1000;
        o.onTick?.(t1 - started, responses);
      }
    }
  };
  await Promise.all(Array.from({ length: o.connections }, loop));
  const elapsedMs = performance.now() - started;
  return { elapsedMs, responses, ok2xx, non2xx: responses - ok2xx, errors, reqPerSec: ok2xx / (elapsedMs / 1000), latency: hist.summary(), errorSamples };
}
