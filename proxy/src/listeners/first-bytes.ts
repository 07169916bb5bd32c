// Reading the first bytes of an accepted connection until they decide what it is (a TLS ClientHello or plaintext;
// a CONNECT or another request), within a time bound. What was read is handed to the decision; the decision says
// whether it goes back into the socket for whoever handles the connection next.
import type { Socket } from 'node:net';
import type { Timers } from '../../../shared-io/timers.js';

/** What the bytes so far decide: null while undecided; `putBack`: unshift everything read into the socket. */
export type FirstBytesDecision<T> = { readonly result: T; readonly putBack: boolean } | null;

/**
 * Reads until `decide` returns a decision, the peer goes away ('closed') or `timeoutMs` passes ('timeout').
 * `done` is called once; after 'timeout' or 'closed' the socket is the caller's to destroy. The timeout runs on
 * `timers` (the listener's) and holds the process while it waits, as it always has.
 */
export function readFirstBytes<T>(socket: Socket, timeoutMs: number, timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>, decide: (head: Buffer) => FirstBytesDecision<T>, done: (r: T | 'timeout' | 'closed') => void): void {
  let head: Buffer | null = null;
  let finished = false;
  const finish = (r: T | 'timeout' | 'closed', putBack: boolean) => {
    if (finished) return;
    finished = true;
    timers.clearTimeout(timer);
    socket.removeListener('readable', onReadable);
    socket.removeListener('end', onGone);
    socket.removeListener('close', onGone);
    socket.removeListener('error', onGone);
    if (putBack && head) socket.unshift(head);
    done(r);
  };
  const onReadable = () => {
    for (let chunk: Buffer | null = socket.read(); chunk !== null; chunk = socket.read()) {
      head = head === null ? chunk : Buffer.concat([head, chunk]);
    }
    const d = head === null ? null : decide(head);
    if (d) finish(d.result, d.putBack);
  };
  const onGone = () => finish('closed', false);
  const timer = timers.setTimeout(() => finish('timeout', false), timeoutMs, 'keep-alive');
  socket.on('readable', onReadable);
  socket.once('end', onGone);
  socket.once('close', onGone);
  socket.once('error', onGone);
}
