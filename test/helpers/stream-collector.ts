// Collects what a grpc-js server stream delivers, for integration tests: every message in order, how it ended, and
// next(pred) that waits (bounded) for the first message matching — failing at once when the stream has ended.
import type * as grpc from '@grpc/grpc-js';
import { until } from './until.js';

export interface CollectedStream<T> {
  readonly seen: T[];
  /** undefined while open; `{}` after an OK end; `{ error }` after a failure status. */
  ended(): { error?: grpc.ServiceError } | undefined;
  /** The first message from index `from` on that matches. */
  next(pred: (m: T) => boolean, opts?: { from?: number; timeoutMs?: number }): Promise<T>;
  cancel(): void;
}

export function collectStream<T>(call: grpc.ClientReadableStream<T>): CollectedStream<T> {
  const seen: T[] = [];
  let ended: { error?: grpc.ServiceError } | undefined;
  call.on('data', (m: T) => seen.push(m));
  call.on('error', (e: grpc.ServiceError) => {
    ended = { error: e };
  });
  call.on('end', () => {
    ended ??= {};
  });
  return {
    seen,
    ended: () => ended,
    cancel: () => call.cancel(),
    async next(pred, opts = {}) {
      const find = () => seen.slice(opts.from ?? 0).find(pred);
      await until(
        `a matching message (got ${seen.length})`,
        () => {
          if (ended && !find()) throw new Error(`stream ended: ${ended.error?.message ?? 'OK'}`);
          return find() !== undefined;
        },
        opts.timeoutMs ?? 10_000,
        25,
      );
      return find()!;
    },
  };
}
