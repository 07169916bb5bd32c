// Tells a TLS ClientHello from plaintext by the first bytes of an accepted connection (permissive inbound
// listeners), without consuming them: what was read is put back for whoever handles the connection next.
import type { Socket } from 'node:net';
import type { Timers } from '../../../shared-io/timers.js';
import { readFirstBytes } from './first-bytes.js';

export type FirstBytes = 'tls' | 'plaintext';
/** `timeout`: too few bytes within the bound; `closed`: the peer went away first. The socket is then destroyed. */
export type SniffResult = FirstBytes | 'timeout' | 'closed';

/**
 * A TLS record starts with its content type and the major version: 0x16 (handshake) 0x03 (SSL 3.0 … TLS 1.3 all
 * write 3 there). An HTTP request starts with a method token, so never with 0x16. Null = need more bytes.
 */
export function classifyFirstBytes(head: Uint8Array): FirstBytes | null {
  if (head.length === 0) return null;
  if (head[0] !== 0x16) return 'plaintext';
  if (head.length < 2) return null;
  return head[1] === 0x03 ? 'tls' : 'plaintext';
}

/**
 * Reads until the first bytes decide (at most two bytes are needed; whole chunks are read and all of them put
 * back with unshift), or until `timeoutMs` has passed since the call, which bounds a peer that connects and
 * sends nothing (server-speaks-first protocols included: they cannot be detected). `done` is called once.
 */
export function sniffFirstBytes(socket: Socket, timeoutMs: number, timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>, done: (r: SniffResult) => void): void {
  readFirstBytes<FirstBytes>(
    socket,
    timeoutMs,
    timers,
    (head) => {
      const kind = classifyFirstBytes(head);
      return kind ? { result: kind, putBack: true } : null;
    },
    (r) => {
      if (r === 'timeout' || r === 'closed') socket.destroy();
      done(r);
    },
  );
}
