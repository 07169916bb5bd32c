// The first request on a forward-proxy connection: a CONNECT (read here, its head consumed: the bytes after it
// belong to the tunnel) or anything else (put back untouched for the HTTP/1.1 session). Bounded by the headers
// timeout and the header size limit, like any request head.
import type { Socket } from 'node:net';
import { mayBeConnect, parseConnectHead } from '../http1/connect-head.js';

export type FirstRequest =
  | { readonly kind: 'http' }
  | { readonly kind: 'connect'; readonly authority: string; readonly rest: Buffer | null }
  | { readonly kind: 'rejected'; readonly status: 400 | 431; readonly reason: 'bad_request' | 'header_too_large' }
  | { readonly kind: 'timeout' | 'closed' };

export function readFirstRequest(socket: Socket, limits: { readonly headersTimeoutMs: number; readonly maxHeaderBytes: number }, done: (r: FirstRequest) => void): void {
  let head: Buffer | null = null;
  let finished = false;
  const finish = (r: FirstRequest) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.removeListener('readable', onReadable);
    socket.removeListener('end', onGone);
    socket.removeListener('close', onGone);
    socket.removeListener('error', onGone);
    if (r.kind === 'http') socket.unshift(head!);
    done(r);
  };
  const onReadable = () => {
    for (let chunk: Buffer | null = socket.read(); chunk !== null; chunk = socket.read()) {
      head = head === null ? chunk : Buffer.concat([head, chunk]);
    }
    if (head === null) return;
    if (!mayBeConnect(head)) return finish({ kind: 'http' });
    const r = parseConnectHead(head, limits.maxHeaderBytes);
    if ('incomplete' in r) return;
    if ('rejected' in r) return finish({ kind: 'rejected', status: r.rejected === 'bad_request' ? 400 : 431, reason: r.rejected });
    finish({ kind: 'connect', authority: r.authority, rest: head.length > r.length ? head.subarray(r.length) : null });
  };
  const onGone = () => finish({ kind: 'closed' });
  const timer = setTimeout(() => finish({ kind: 'timeout' }), limits.headersTimeoutMs);
  socket.on('readable', onReadable);
  socket.once('end', onGone);
  socket.once('close', onGone);
  socket.once('error', onGone);
}
