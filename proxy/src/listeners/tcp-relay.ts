// Bytes both ways between two sockets with backpressure and half-close: when one side finishes sending, the
// other side's write half is ended and the reverse direction keeps flowing until it finishes too.
import type { Socket } from 'node:net';

export interface RelayResult {
  /** Bytes from `a` to `b`, and back. */
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly error?: string;
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
