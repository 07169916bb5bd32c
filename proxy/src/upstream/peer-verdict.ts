// When the dialing side of an mTLS connection may call its handshake a success. In TLS 1.3 the client finishes
// (secureConnect) before the server has judged the client certificate: a server that refuses it says so after,
// with an alert or (a Tessera upstream, which never tells a peer why) by closing at once. So the verdict waits
// for the peer to speak after the handshake: a session ticket (sent only once the server accepted us), a byte of
// application data, an error (its alert), or its close. The connection itself is not held back by this.
import type { TLSSocket } from 'node:tls';
import { classifyTlsError, type HandshakeReason } from '../telemetry/handshake-reason.js';

/** The upstream refused this proxy after the handshake: the metric reason and the error to log. */
export interface Refusal {
  readonly reason: HandshakeReason;
  readonly err: Error;
}

/**
 * Subscribes to a connection's verdict (once; at once when it is already known): what a TCP tunnel consults, whose
 * upstream may refuse this proxy after the client side of the handshake finished and the tunnel began.
 */
export type VerdictWatch = (fn: (refusal: Refusal | null) => void) => void;

/** Where the first read of a connection is seen when its reads bypass 'data' listeners (directReads). */
export interface FirstRead {
  onFirstRead(fn: (() => void) | undefined): void;
}

/**
 * Calls `judge` once: null when the peer accepted this proxy, or the refusal. TLS 1.2 and earlier at once (the
 * server's verdict comes before its Finished). TLS 1.3: at the first of a session ticket, a read, an error, or
 * the peer's end. An end before anything else within `windowMs` of the handshake is a refusal (reason
 * `protocol`: what was refused is only in the upstream's own log); a later one is a server without tickets
 * closing an idle connection, and a close by this side is no verdict of the peer: both are a success.
 */
export function awaitPeerVerdict(socket: TLSSocket, nowMs: () => number, windowMs: number, reads: FirstRead | undefined, judge: (refusal: Refusal | null) => void): void {
  if (socket.getProtocol() !== 'TLSv1.3') return void judge(null);
  const secureAt = nowMs();
  let open = true;
  const settle = (refusal: Refusal | null) => {
    if (!open) return;
    open = false;
    socket.removeListener('session', accepted);
    socket.removeListener('error', onError);
    socket.removeListener('end', onEnd);
    socket.removeListener('close', onClose);
    reads?.onFirstRead(undefined);
    judge(refusal);
  };
  const accepted = () => settle(null);
  const onError = (err: Error) => {
    if (spoke()) return settle(null);
    const detail = `the upstream refused this proxy's certificate after the handshake: ${err.message}`;
    settle({ reason: classifyTlsError(err), err: Object.assign(new Error(detail, { cause: err }), { code: (err as { code?: unknown }).code }) });
  };
  // Bytes the owner read through 'data' (or that wait in the buffer) are the peer speaking too: a resumed session
  // gets no new ticket, and an upstream may answer and close at once (no reads hook on tunnels).
  const spoke = () => socket.readableDidRead || socket.readableLength > 0;
  const onEnd = () => {
    if (spoke() || nowMs() - secureAt > windowMs) return settle(null);
    const detail = "the upstream closed the connection right after the handshake, before any session ticket or byte: it refused this proxy's certificate (its own log and inbound metrics say why)";
    settle({ reason: 'protocol', err: new Error(detail) });
  };
  const onClose = () => settle(null);
  socket.once('session', accepted);
  socket.on('error', onError);
  socket.once('end', onEnd);
  socket.once('close', onClose);
  reads?.onFirstRead(accepted);
}
