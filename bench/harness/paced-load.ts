// Keep-alive HTTP/1.1 load at a fixed rate, open loop: request n of the run is due at n / rate seconds and goes on
// connection n mod C, so arrivals are spread evenly in time. autocannon's `--rate` sends each connection's share
// in bursts, whose queueing then dominates every variant's p99. Latency runs from when a request was due, not from
// when it left, so a generator or proxy that falls behind shows it (no coordinated omission).
import { connect as netConnect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { connect as tlsConnect } from 'node:tls';
import type { ConnPerRequestResult } from './conn-per-request-load.js';
import { LatencyHistogram } from './latency-histogram.js';

export interface PacedLoadOptions {
  readonly host: string;
  readonly port: number;
  readonly connections: number;
  /** Requests per second over all connections. */
  readonly rateRps: number;
  readonly durationMs: number;
  readonly path?: string;
  /** HTTPS without a client certificate (an edge listener); the server is not verified, as with autocannon. */
  readonly tls?: boolean;
  /** How long answers still due are awaited after the last request was sent. */
  readonly drainMs?: number;
  readonly signal?: AbortSignal;
  readonly onTick?: (elapsedMs: number, responses: number) => void;
}

/** The same figures as the connection-per-request load: requests, 2xx, failures, rate, latency. */
export type PacedLoadResult = ConnPerRequestResult;

const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
const STATUS = /^HTTP\/1\.[01] (\d{3})/;
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)[ \t]*(?:\r\n|$)/i;

/** One keep-alive connection: requests in flight (their due times, oldest first) and unread bytes. */
class PacedConnection {
  readonly due: number[] = [];
  #buf: Buffer | null = null;
  #dead: string | null = null;
  readonly #socket: Socket;
  readonly #onAnswer: (status: number, dueMs: number) => void;
  readonly #onFailure: (why: string, count: number) => void;

  constructor(o: PacedLoadOptions, onAnswer: (status: number, dueMs: number) => void, onFailure: (why: string, count: number) => void) {
    this.#onAnswer = onAnswer;
    this.#onFailure = onFailure;
    const opts = { host: o.host, port: o.port };
    this.#socket = o.tls ? tlsConnect({ ...opts, rejectUnauthorized: false }) : netConnect(opts);
    this.#socket.setNoDelay(true);
    this.#socket.on('data', (chunk: Buffer) => this.#read(chunk));
    this.#socket.on('error', (e) => this.#fail(e.message));
    this.#socket.on('close', () => this.#fail('connection closed with requests unanswered'));
  }

  send(request: Buffer, dueMs: number): void {
    if (this.#dead !== null) {
      this.#onFailure(this.#dead, 1);
      return;
    }
    this.due.push(dueMs);
    this.#socket.write(request);
  }

  close(): void {
    this.#dead ??= 'load ended';
    this.#socket.destroy();
  }

  #read(chunk: Buffer): void {
    let b = this.#buf ? Buffer.concat([this.#buf, chunk]) : chunk;
    for (;;) {
      const end = b.indexOf(HEAD_END);
      if (end < 0) break;
      const head = b.toString('latin1', 0, end);
      const status = STATUS.exec(head);
      const length = CONTENT_LENGTH.exec(head);
      // The apps and proxies measured answer with Content-Length; anything else is a failure, not a guess.
      if (!status || !length) {
        this.#fail(`unexpected response head: ${head.split('\r\n')[0]}`);
        return;
      }
      const total = end + 4 + Number(length[1]);
      if (b.length < total) break;
      b = b.subarray(total);
      const due = this.due.shift();
      if (due !== undefined) this.#onAnswer(Number(status[1]), due);
    }
    this.#buf = b.length > 0 ? b : null;
  }

  #fail(why: string): void {
    if (this.#dead !== null) return;
    this.#dead = why;
    this.#socket.destroy();
    if (this.due.length > 0) this.#onFailure(why, this.due.splice(0).length);
  }
}

export async function runPacedLoad(o: PacedLoadOptions): Promise<PacedLoadResult> {
  const request = Buffer.from(`GET ${o.path ?? '/'} HTTP/1.1\r\nHost: ${o.host}:${o.port}\r\n\r\n`, 'latin1');
  const hist = new LatencyHistogram();
  const errorSamples: string[] = [];
  let responses = 0;
  let ok2xx = 0;
  let errors = 0;
  const answered = (status: number, dueMs: number) => {
    responses++;
    if (status >= 200 && status < 300) {
      ok2xx++;
      hist.recordMs(performance.now() - dueMs);
    }
  };
  const failed = (why: string, count: number) => {
    errors += count;
    if (errorSamples.length < 3 && !errorSamples.includes(why)) errorSamples.push(why);
  };
  const conns = Array.from({ length: Math.max(1, o.connections) }, () => new PacedConnection(o, answered, failed));
  const total = Math.floor((o.rateRps * o.durationMs) / 1000);
  const intervalMs = 1000 / o.rateRps;
  const started = performance.now();
  let sent = 0;
  let nextTick = 1000;
  await new Promise<void>((resolve) => {
    const pace = () => {
      const elapsed = performance.now() - started;
      while (sent < total && sent * intervalMs <= elapsed && !o.signal?.aborted) {
        conns[sent % conns.length]!.send(request, started + sent * intervalMs);
        sent++;
      }
      if (elapsed >= nextTick) {
        nextTick += 1000;
        o.onTick?.(elapsed, responses);
      }
      if (sent >= total || o.signal?.aborted) resolve();
      else setTimeout(pace, Math.min(1, Math.max(0, sent * intervalMs - elapsed)));
    };
    pace();
  });
  // Answers still due: waited for, then counted as failures.
  const drainUntil = performance.now() + (o.drainMs ?? 2_000);
  while (conns.some((c) => c.due.length > 0) && performance.now() < drainUntil && !o.signal?.aborted) await new Promise((r) => setTimeout(r, 5));
  const unanswered = conns.reduce((n, c) => n + c.due.length, 0);
  if (unanswered > 0) failed('no answer before the load ended', unanswered);
  for (const c of conns) c.close();
  const elapsedMs = Math.max(o.durationMs, sent * intervalMs);
  return { elapsedMs, responses, ok2xx, non2xx: responses - ok2xx, errors, reqPerSec: ok2xx / (elapsedMs / 1000), latency: hist.summary(), errorSamples };
}
