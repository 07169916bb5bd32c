// Two MuxSessions (proxy/src/mux/mux-session.ts) on the two ends of a real loopback socket pair, the dialing one
// ready (the server's SETTINGS read), with what the tests look at: streams the server accepted, why each side ended,
// socket writes and reads per side; plus helpers that write a body with back-pressure and read one to its end.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { type MuxEndReason, MuxSession } from '../../proxy/src/mux/mux-session.js';
import type { MuxStream } from '../../proxy/src/mux/mux-stream.js';
import { type SocketPair, tcpPair, tlsPair } from './mux-wire.js';

export interface SessionPairOptions {
  readonly transport?: 'tls' | 'tcp';
  readonly maxStreams?: number;
  readonly keepaliveIntervalMs?: number;
  readonly keepaliveTimeoutMs?: number;
  /** Both sessions' clock (default Date.now): a frozen one never renews the flood budget. */
  readonly nowMs?: () => number;
  /** Runs for each stream the server accepts (it is also queued for nextStream()). Without it each accepted stream
   * starts paused (its first bytes come with its SYN, before nextStream() resolves): readBody() resumes it. */
  readonly onStream?: (s: MuxStream) => void;
}

export interface SessionPair {
  readonly sockets: SocketPair;
  readonly client: MuxSession;
  readonly server: MuxSession;
  readonly ended: { client: MuxEndReason[]; server: MuxEndReason[] };
  readonly writes: { client: number; server: number };
  readonly reads: { client: number; server: number };
  /** Every stream the server accepted, in order. */
  readonly accepted: MuxStream[];
  /** The next stream the server accepts (or one accepted and not yet taken). */
  nextStream(): Promise<MuxStream>;
  close(): Promise<void>;
}

export async function sessionPair(o: SessionPairOptions = {}): Promise<SessionPair> {
  const sockets = o.transport === 'tcp' ? await tcpPair() : await tlsPair();
  const ended = { client: [] as MuxEndReason[], server: [] as MuxEndReason[] };
  const writes = { client: 0, server: 0 };
  const reads = { client: 0, server: 0 };
  const accepted: MuxStream[] = [];
  const untaken: MuxStream[] = [];
  const takers: ((s: MuxStream) => void)[] = [];
  const common = { nowMs: o.nowMs ?? (() => Date.now()), keepaliveIntervalMs: o.keepaliveIntervalMs ?? 60_000, keepaliveTimeoutMs: o.keepaliveTimeoutMs ?? 60_000 };
  const server = new MuxSession(sockets.server, {
    ...common,
    role: 'server',
    maxStreams: o.maxStreams ?? 100,
    onStream: (s) => {
      accepted.push(s);
      if (o.onStream) o.onStream(s);
      else s.pause();
      const t = takers.shift();
      if (t) t(s);
      else untaken.push(s);
    },
    onEnd: (r) => ended.server.push(r),
    onWrite: () => writes.server++,
    onRead: () => reads.server++,
  });
  let ready!: () => void;
  const isReady = new Promise<void>((r) => {
    ready = r;
  });
  const client = new MuxSession(sockets.client, {
    ...common,
    role: 'client',
    maxStreams: 0,
    onReady: () => ready(),
    onEnd: (r) => ended.client.push(r),
    onWrite: () => writes.client++,
    onRead: () => reads.client++,
  });
  await isReady;
  return {
    sockets,
    client,
    server,
    ended,
    writes,
    reads,
    accepted,
    nextStream: () => new Promise((resolve) => (untaken.length > 0 ? resolve(untaken.shift()!) : takers.push(resolve))),
    close: async () => {
      client.close();
      server.close();
      await sockets.close();
    },
  };
}

/** Writes `data` in `chunk`-sized writes, waiting for 'drain' when told to, then ends the stream (unless `end` is false). */
export async function writeBody(s: MuxStream, data: Buffer, chunk = 16 * 1024, end = true): Promise<void> {
  for (let at = 0; at < data.length; at += chunk) {
    if (!s.write(data.subarray(at, at + chunk))) await once(s, 'drain');
  }
  if (end) s.end();
}

export interface ReadResult {
  readonly bytes: number;
  readonly sha256: string;
}

/** Reads a stream (resumed if paused) until its 'end'; rejects when it closes or errors first. */
export function readBody(s: MuxStream): Promise<ReadResult> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    let bytes = 0;
    s.on('data', (d: Buffer) => {
      bytes += d.length;
      h.update(d);
    });
    s.once('end', () => resolve({ bytes, sha256: h.digest('hex') }));
    s.once('error', reject);
    s.once('close', () => reject(new Error(`stream ${s.id} closed before its end (${bytes} bytes read)`)));
    s.resume();
  });
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}
