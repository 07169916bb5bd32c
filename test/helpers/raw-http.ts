// Exact bytes over a real socket for tests whose point is the bytes: hand-made requests (fragments, chunked
// trailers, HTTP/1.0 without Host) that no well-behaved client library would send, and the raw answer back.
import * as net from 'node:net';
import * as tls from 'node:tls';

export interface RawReply {
  /** Everything the server sent, latin1. */
  readonly text: string;
  /** True when the server closed the connection (false: `until` matched or the cap passed first). */
  readonly closedByPeer: boolean;
  /** Milliseconds from the start until the reply ended (closed, matched or capped). */
  readonly closedAfterMs: number;
}

export interface RawTarget {
  readonly port: number;
  /** Set for TLS (mTLS when it carries cert and key). */
  readonly tls?: tls.ConnectionOptions;
}

/**
 * Connects, writes `parts` in order (a number is a pause in ms; writing stops once the server has closed), ends
 * its side after them with `endAfterWrite`, and collects the reply until the server closes, `until(text)` holds,
 * `signal` aborts (the socket is destroyed: a client that leaves) or `capMs` passes.
 */
export function rawHttp(target: RawTarget, parts: readonly (string | number)[], opts: { until?: (text: string) => boolean; capMs?: number; endAfterWrite?: boolean; signal?: AbortSignal } = {}): Promise<RawReply> {
  const startMs = Date.now();
  return new Promise((resolve) => {
    const socket = target.tls ? tls.connect({ host: '127.0.0.1', port: target.port, checkServerIdentity: () => undefined, ...target.tls }) : net.connect(target.port, '127.0.0.1');
    let text = '';
    let settled = false;
    const settle = (closedByPeer: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(cap);
      socket.destroy();
      resolve({ text, closedByPeer, closedAfterMs: Date.now() - startMs });
    };
    const cap = setTimeout(() => settle(false), opts.capMs ?? 8_000);
    opts.signal?.addEventListener('abort', () => settle(false)); // the client leaves
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (opts.until?.(text)) settle(false);
    });
    socket.on('close', () => settle(true));
    socket.on('error', () => settle(true));
    socket.once(target.tls ? 'secureConnect' : 'connect', async () => {
      for (const p of parts) {
        if (settled) return;
        if (typeof p === 'number') await new Promise((r) => setTimeout(r, p));
        else socket.write(Buffer.from(p, 'latin1'));
      }
      if (opts.endAfterWrite && !settled) socket.end();
    });
  });
}

/** The status code of the first response in `text` (0 when there is none). */
export function firstStatus(text: string): number {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  return m ? Number(m[1]) : 0;
}

/** True once `text` holds one whole response: a Content-Length body, or a chunked one up to its last chunk. */
export function oneResponse(text: string): boolean {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const head = text.slice(0, end);
  if (/\r\ntransfer-encoding: *chunked/i.test(head)) return text.endsWith('0\r\n\r\n');
  const len = /\r\ncontent-length: *(\d+)/i.exec(head);
  return len !== null && text.length >= end + 4 + Number(len[1]);
}
