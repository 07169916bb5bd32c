// Waiting for a writer's socket to drain, bounded: true on 'drain', false when it closes or `ms` pass first. The
// memory-bound tests write until the proxy pushes back, and stop once it stays pushed back.
import type { Socket } from 'node:net';

export function drainedWithin(socket: Socket, ms: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const t = setTimeout(() => resolve(false), Math.max(0, ms));
    const done = (ok: boolean) => {
      clearTimeout(t);
      socket.off('drain', onDrain);
      socket.off('close', onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    socket.once('drain', onDrain);
    socket.once('close', onClose);
  });
}
