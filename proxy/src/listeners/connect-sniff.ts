// The first request on a forward-proxy connection: a CONNECT (read here, its head consumed: the bytes after it
// belong to the tunnel) or anything else (put back untouched for the HTTP/1.1 session). Bounded by the headers
// timeout and the header size limit, like any request head.
import type { Socket } from 'node:net';
import type { Timers } from '../../../shared-io/timers.js';
import { mayBeConnect, parseConnectHead } from '../http1/connect-head.js';
import { readFirstBytes } from './first-bytes.js';

export type FirstRequest =
  | { readonly kind: 'http' }
  | { readonly kind: 'connect'; readonly authority: string; readonly rest: Buffer | null }
  | { readonly kind: 'rejected'; readonly status: 400 | 431; readonly reason: 'bad_request' | 'header_too_large' }
  | { readonly kind: 'timeout' | 'closed' };

export function readFirstRequest(socket: Socket, limits: { readonly headersTimeoutMs: number; readonly maxHeaderBytes: number }, timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>, done: (r: FirstRequest) => void): void {
  readFirstBytes<FirstRequest>(
    socket,
    limits.headersTimeoutMs,
    timers,
    (head) => {
      if (!mayBeConnect(head)) return { result: { kind: 'http' }, putBack: true };
      const r = parseConnectHead(head, limits.maxHeaderBytes);
      if ('incomplete' in r) return null;
      if ('rejected' in r) return { result: { kind: 'rejected', status: r.rejected === 'bad_request' ? 400 : 431, reason: r.rejected }, putBack: false };
      return { result: { kind: 'connect', authority: r.authority, rest: head.length > r.length ? head.subarray(r.length) : null }, putBack: false };
    },
    (r) => done(r === 'timeout' || r === 'closed' ? { kind: r } : r),
  );
}
