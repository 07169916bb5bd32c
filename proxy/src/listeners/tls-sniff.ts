// Tells a TLS ClientHello from plaintext by the first bytes of an accepted connection (permissive inbound
// listeners), without consuming them: what was read is put back for whoever handles the connection next.
import type { Socket } from 'node:net';

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
export function sniffFirstBytes(socket: Socket, timeoutMs: number, done: (r: SniffResult) => void): void {
  let head: Buffer | null = null;
  let finished = false;
  const finish = (r: SniffResult) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.removeListener('readable', onReadable);
    socket.removeListener('end', onGone);
    socket.removeListener('close', onGone);
    socket.removeListener('error', onGone);
    if (r === 'tls' || r === 'plaintext') socket.unshift(head!);
    else socket.destroy();
    done(r);
  };
  const onReadable = () => {
    for (let chunk: Buffer | null = socket.read(); chunk !== null; chunk = socket.read()) {
      head = head === null ? chunk : Buffer.concat([head, chunk]);
    }
    const kind = head === null ? null : classifyFirstBytes(head);
    if (kind) finish(kind);
  };
  const onGone = () => finish('closed');
  const timer = setTimeout(() => finish('timeout'), timeoutMs);
  socket.on('readable', onReadable);
  socket.once('end', onGone);
  socket.once('close', onGone);
  socket.once('error', onGone);
}
