// The deadlines of an answer read into the void. A session whose client has gone reads a small or pending answer
// to the end so its pooled upstream connection survives, but the listener's sweep forgets the session once the
// client's socket closes: without a timer of its own, an app that never answered kept that connection for ever,
// and `upstreamPoolSize` callers that gave up wedged the endpoint for every caller (audit 9b F2). The read is worth
// a bounded time only: an answer trickled a byte at a time held it for length x interval (audit 10 F3).
import type { Timers } from '../../../shared-io/timers.js';
import type { Http1Exchange } from './http1-exchange.js';
import { restFitsTheVoid } from './http1-response.js';

type ExpiredFlag = NonNullable<ReturnType<Http1Exchange['expiredAt']>>;

/** The session's clock and timers (its options object, passed as is: nothing is made per exchange). */
export interface VoidTime {
  readonly nowMs: () => number;
  readonly timers: Pick<Timers, 'setTimeout'>;
}

export interface VoidLimits {
  readonly streamIdleTimeoutMs: number;
  /** The whole read into the void gets this long from the moment the client left (limits.requestTimeout). */
  readonly voidMs: number;
}

/**
 * Checks `ex` at its next deadline (request timeout until the head, total, stream idle, and `voidMs` since now)
 * while `stillVoid()`; calls `expired` once one has passed. One timer at a time, re-armed when bytes moved the idle
 * deadline on.
 */
export function voidDeadline(ex: Http1Exchange, limits: VoidLimits, time: VoidTime, stillVoid: () => boolean, expired: (flag: ExpiredFlag) => void): void {
  const { nowMs, timers } = time;
  const giveUpAt = nowMs() + limits.voidMs;
  const next = () => Math.min(ex.deadlineMs(limits.streamIdleTimeoutMs), giveUpAt);
  const check = (): void => {
    if (!stillVoid()) return;
    const now = nowMs();
    const flag = ex.expiredAt(now, limits.streamIdleTimeoutMs) ?? (now >= giveUpAt ? 'request_timeout' : undefined);
    if (flag) expired(flag);
    else arm(next() - now);
  };
  const arm = (ms: number) => timers.setTimeout(check, Math.max(1, Math.min(ms, 2 ** 31 - 1)));
  arm(next() - nowMs());
}

/**
 * The client left mid-exchange. A request that went out whole, whose answer is small or still to come, is answered
 * into the void (under voidDeadline) so the pooled upstream connection survives; false: not worth it (e.g. a stream
 * that could run for hours), the caller gives the exchange up and the upstream connection goes with it.
 */
export function intoTheVoid(ex: Http1Exchange, limits: VoidLimits, time: VoidTime, stillVoid: () => boolean, expired: (flag: ExpiredFlag) => void): boolean {
  // An upgrade request: its answer is a 101 and a tunnel nobody is on, and its connection is never reused. Read into
  // the void, the app's upgraded connection (and, without mux, the mesh connection) stayed open for voidMs
  // (limits.requestTimeout) per abandoned attempt (audit 40b F1); given up, its upstream leg is reset.
  if (!ex.conn || !ex.reqDone || ex.upgrade !== null || !restFitsTheVoid(ex)) return false;
  ex.conn.socket.resume(); // nobody will send 'drain' any more
  voidDeadline(ex, limits, time, stillVoid, expired);
  return true;
}
