// Bytes both ways between two sockets with backpressure and half-close: when one side finishes sending, the
// other side's write half is ended and the reverse direction keeps flowing until it finishes too.
import type { Socket } from 'node:net';

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
 * request), 502 the upstream reset it. Only the last is a failure: an idle or abandoned tunnel worked.
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
    a.destroy();
    b.destroy();
  };
  a.pipe(b);
  b.pipe(a);
  a.on('error', fail('downstream_reset'));
  b.on('error', fail('upstream_reset'));
  a.setTimeout(idleTimeoutMs, fail('idle_timeout'));
  a.once('close', () => {
    b.destroy();
    onClose();
  });
  b.once('close', () => {
    a.destroy();
    onClose();
  });
}
