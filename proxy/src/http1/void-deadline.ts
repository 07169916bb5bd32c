// The deadlines of an answer read into the void. A session whose client has gone reads a small or pending answer
// to the end so its pooled upstream connection survives, but the listener's sweep forgets the session once the
// client's socket closes: without a timer of its own, an app that never answered kept that connection for ever,
// and `upstreamPoolSize` callers that gave up wedged the endpoint for every caller (audit 9b F2).
import type { Http1Exchange } from './http1-exchange.js';

type ExpiredFlag = NonNullable<ReturnType<Http1Exchange['expiredAt']>>;

/**
 * Checks `ex` at its next deadline (request timeout until the head, total, stream idle) while `stillVoid()`; calls
 * `expired` once one has passed. One timer at a time, re-armed when bytes moved the idle deadline on.
 */
export function voidDeadline(ex: Http1Exchange, streamIdleTimeoutMs: number, nowMs: () => number, stillVoid: () => boolean, expired: (flag: ExpiredFlag) => void): void {
  const check = (): void => {
    if (!stillVoid()) return;
    const now = nowMs();
    const flag = ex.expiredAt(now, streamIdleTimeoutMs);
    if (flag) expired(flag);
    else arm(ex.deadlineMs(streamIdleTimeoutMs) - now);
  };
  const arm = (ms: number) => setTimeout(check, Math.max(1, Math.min(ms, 2 ** 31 - 1))).unref();
  arm(ex.deadlineMs(streamIdleTimeoutMs) - nowMs());
}
