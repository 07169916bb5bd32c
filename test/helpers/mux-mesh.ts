// For the multiplexed-transport integration tests: the app behind the inbound sidecar (echo, JSON with the headers it
// got, large downloads with back-pressure, slow answers; it records which request ids reached it and which it
// answered), a keep-alive HTTP client that hashes bodies, a bounded load of sequential requests per client
// connection that records every outcome, and the access-log records on a proxy's stdout.
import { createHash } from 'node:crypto';
import { Agent, type IncomingHttpHeaders, type Server, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { metricsText, sumSeries } from './prom-metrics.js';
import type { ProxyProcess } from './proxy-process.js';

/** The repeating 64 KiB block every download is made of (the client checks bytes against it by offset). */
export const BLOCK = Buffer.from(Array.from({ length: 65_536 }, (_, i) => (i * 7919 + (i >> 8)) & 0xff));

export interface MeshApp {
  readonly port: number;
  /** Request ids (the `id` query parameter) that reached the app, and those it finished answering. */
  readonly received: Set<string>;
  readonly answered: Set<string>;
  /** Bytes of each download (by id) the app's socket took so far (writes that were accepted). */
  readonly downloadWritten: Map<string, number>;
  close(): Promise<void>;
}

export async function startMeshApp(): Promise<MeshApp> {
  const received = new Set<string>();
  const answered = new Set<string>();
  const downloadWritten = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://app');
    const id = url.searchParams.get('id');
    if (id) {
      received.add(id);
      res.on('finish', () => answered.add(id));
    }
    if (url.pathname === '/v1/echo') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      req.pipe(res);
      return;
    }
    if (url.pathname === '/v1/download') {
      const total = Number(url.searchParams.get('bytes'));
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
      let sent = 0;
      const pump = () => {
        while (sent < total) {
          const n = Math.min(BLOCK.length, total - sent);
          const ok = res.write(n === BLOCK.length ? BLOCK : BLOCK.subarray(0, n));
          sent += n;
          if (id) downloadWritten.set(id, sent);
          if (!ok) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return;
    }
    req.resume();
    req.on('end', () => {
      const answer = () => {
        const body = JSON.stringify({ path: req.url, headers: req.headers });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      };
      const ms = Number(url.searchParams.get('ms') ?? 0);
      if (ms > 0) setTimeout(answer, ms);
      else answer();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    received,
    answered,
    downloadWritten,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly bytes: number;
  readonly sha256: string;
  readonly text: string;
}

/** One request through `agent` (a keep-alive agent, or false for a connection of its own). */
export function call(port: number, path: string, o: { agent?: Agent | false; method?: string; body?: Buffer; keepText?: boolean } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: o.method ?? 'GET', agent: o.agent ?? false, headers: o.body ? { 'content-length': o.body.length } : {} }, (res) => {
      const h = createHash('sha256');
      let bytes = 0;
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => {
        bytes += d.length;
        h.update(d);
        if (o.keepText !== false && bytes < 1 << 20) parts.push(d);
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, bytes, sha256: h.digest('hex'), text: Buffer.concat(parts).toString() }));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('response aborted')));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** sha-256 of a download of `bytes` (BLOCK repeated). */
export function downloadSha256(bytes: number): string {
  const h = createHash('sha256');
  for (let at = 0; at < bytes; at += BLOCK.length) h.update(BLOCK.subarray(0, Math.min(BLOCK.length, bytes - at)));
  return h.digest('hex');
}

export interface Outcome {
  readonly id: string;
  readonly startedMs: number;
  readonly endedMs: number;
  /** HTTP status, or 0 when the client saw no answer (a reset, a refused connection). */
  readonly status: number;
  readonly error?: string;
}

/**
 * `clients` keep-alive connections (one agent socket each) sending requests one after another until stop() (or
 * `maxPerClient` each); every outcome recorded. Request paths are `${path}&id=<client>-<n>`.
 */
export function runLoad(port: number, path: string, clients: number, maxPerClient = 10_000): { outcomes: Outcome[]; stop: () => Promise<Outcome[]> } {
  const outcomes: Outcome[] = [];
  let stopped = false;
  const loops = Array.from({ length: clients }, async (_, c) => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let n = 0; n < maxPerClient && !stopped; n++) {
        const id = `${c}-${n}`;
        const startedMs = Date.now();
        try {
          const a = await call(port, `${path}&id=${id}`, { agent, keepText: false });
          outcomes.push({ id, startedMs, endedMs: Date.now(), status: a.status });
        } catch (e) {
          outcomes.push({ id, startedMs, endedMs: Date.now(), status: 0, error: (e as Error).message });
        }
      }
    } finally {
      agent.destroy();
    }
  });
  return {
    outcomes,
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
      return outcomes;
    },
  };
}

/** The JSON records on a proxy's stdout (lifecycle lines and the access log). */
export function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The sum of a metric's series on a proxy's admin /metrics that carry `labels`. */
export async function proxyMetric(p: ProxyProcess, name: string, labels: Record<string, string> = {}): Promise<number> {
  return sumSeries(await metricsText(p.admin), name, labels);
}
