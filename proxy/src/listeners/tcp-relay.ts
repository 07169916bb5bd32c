// Bytes both ways between two sockets with backpressure and half-close: when one side finishes sending, the
// other side's write half is ended and the reverse direction keeps flowing until it finishes too. A side that ends
// with a reset (an error) resets the other, never a clean close: across a mesh hop the caller's proxy must see the
// app's reset to charge its endpoint (`upstream_reset`), where a clean FIN would read as a tunnel that worked. So
// does a side this proxy cut (the drain deadline, a revoked peer): the other leg must not read an orderly end.
import type { Socket } from 'node:net';
import type { VerdictWatch } from '../upstream/peer-verdict.js';
import { resetSocket } from './socket-reset.js';

export interface RelayResult {
  /** Bytes from `a` to `b`, and back. */
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly error?: string;
}

/**
 * The status that labels a finished tunnel (tessera_requests_total{code} for TCP, the connection's outcome; not logged):
 * 200 closed by either side, 408 closed by the proxy after limits.idleTimeout (streamIdleTimeout for CONNECT) with no
 * byte either way (as an idle HTTP connection, `idle_timeout`), 499 the client reset it (nginx's client closed
 * request), 502 the upstream reset it or refused this proxy (`upstream_unavailable`, refusalGuard). Only the last
 * is a failure: an idle or abandoned tunnel worked.
 */
export function tunnelStatus(error: string | undefined): number {
  if (error === undefined) return 200;
  if (error === 'idle_timeout') return 408;
  return error === 'downstream_reset' ? 499 : 502;
}

export function relay(a: Socket, b: Socket, idleTimeoutMs: number, done: (r: RelayResult) => void): void {
  let finished = false;
  let error: string | undefined;
  let closed = 0;
  const finish = () => {
    if (finished) return;
    finished = true;
    done({ bytesIn: b.bytesWritten ?? 0, bytesOut: a.bytesWritten ?? 0, ...(error ? { error } : {}) });
  };
  const onClose = () => {
    if (++closed === 2) finish();
  };
  const fail = (code: string) => () => {
    error ??= code;
    // The idle cut is the proxy's own close; a reset (either side's error) goes on to the other side as a reset.
    if (code === 'idle_timeout') {
      a.destroy();
      b.destroy();
    } else resetSocket(code === 'upstream_reset' ? a : b);
  };
  a.pipe(b);
  b.pipe(a);
  a.on('error', fail('downstream_reset'));
  b.on('error', fail('upstream_reset'));
  a.setTimeout(idleTimeoutMs, fail('idle_timeout'));
  // A close after an error was handled by fail (error listeners run before 'close'); a clean close stays clean. A
  // side that closed without an error before it finished both ways was destroyed here, by this proxy (its drain
  // deadline or a ban, SessionSet cut(); a banned upstream): an abort, passed on as a reset. Before, the other leg got
  // a FIN, and an app behind it took the half-sent upload of a tunnel cut at the drain deadline as complete (audit
  // 38a F1). The idle cut (fail) destroys both sides first: a close, as documented.
  a.once('close', (hadError: boolean) => {
    if (hadError || !finishedBothWays(a)) resetSocket(b);
    else b.destroy();
    onClose();
  });
  b.once('close', (hadError: boolean) => {
    if (hadError || !finishedBothWays(b)) resetSocket(a);
    else a.destroy();
    onClose();
  });
}

/**
 * A tunnel whose upstream refuses this proxy's certificate after it began: in TLS 1.3 the client side of the
 * handshake finishes first, the tunnel starts, and the upstream's verdict (peer-verdict.ts) comes as a close or an
 * alert. The client is then reset at once (the verdict is heard before relay() sees that close), not handed a
 * clean end it could take for an empty answer; the tunnel is a 502 `upstream_unavailable`, as HTTP counts the same
 * refusal. Before, it was a 200 without an error and the client read an orderly EOF (audit 55b F2). Returns the
 * error to count in place of relay()'s.
 */
export function refusalGuard(verdict: VerdictWatch | undefined, client: Socket): (error: string | undefined) => string | undefined {
  let refused = false;
  verdict?.((refusal) => {
    // A reset is left to relay(), which counts it `upstream_reset` (502, the endpoint charged a `reset`): over a
    // resumed session (no new ticket) an app's reset relayed by the upstream proxy reads the same as a refusal by
    // reset, and the app's is the common case (mesh-outlier-attribution). Refusals by alert or close stay refusals.
    if (refusal === null || (refusal.err as { code?: unknown }).code === 'ECONNRESET') return;
    refused = true;
    resetSocket(client);
  });
  return (error) => (refused ? 'upstream_unavailable' : error);
}

/** The peer's end was read and our own end was sent: an orderly close, not one this proxy cut short. */
function finishedBothWays(s: Socket): boolean {
  return s.readableEnded && s.writableFinished;
}

/**
 * Closes an upstream connection that will carry nothing (its client left while it was being connected) with an
 * orderly end, not destroy(): the last flight of a TLS 1.3 handshake (the client's Finished) may still be queued,
 * and without it the upstream counted a handshake its peer abandoned, after its handshake timeout (audit 35a F1).
 */
export function closeUnused(up: Socket): void {
  up.on('error', () => up.destroy());
  up.setTimeout(UNUSED_LINGER_MS, () => up.destroy());
  up.end();
}

/** How long an unused upstream connection may wait for its peer's end before it is destroyed. */
const UNUSED_LINGER_MS = 5_000;
