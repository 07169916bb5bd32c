// Admission of the next request on an Http1Session: the head parsed and checked (limits, framing, Host), the plan
// asked, and the exchange made, to forward or to answer here. Apart from the session because it touches no socket:
// what it needs comes in as arguments, what it decides goes back as a value the session acts on.

import type { RefusalReason } from '../../../common/refusal-reasons.js';
import { withExchangeLimits } from '../config/exchange-limits.js';
import { framerFor } from './body-framer.js';
import { upstreamRequestHead } from './head-rewrite.js';
import { isValidHostValue } from './host-value.js';
import { Http1Exchange } from './http1-exchange.js';
import { headerValue, parseHead, requestFraming, wantsKeepAlive } from './http1-head.js';
import type { SessionOptions } from './http1-session-types.js';
import { upgradeRequested } from './upgrade-offer.js';

const NOTHING = Buffer.alloc(0);

/** A head that cannot be served at all: answered with `status`, counted as `rejected`, the connection closed. */
export interface RejectedHead {
  readonly status: number;
  readonly rejected: RefusalReason;
}

/** Answered by the proxy instead of forwarded. */
export interface LocalAnswer {
  readonly status: number;
  readonly code: RefusalReason;
  /** A refused request with a body, or a refused upgrade: the connection closes rather than draining the body or guessing what the client sends next. */
  readonly close: boolean;
}

export interface AdmittedRequest {
  readonly ex: Http1Exchange;
  /** What followed the head: (part of) the body, or the next pipelined request. */
  readonly rest: Buffer | null;
  /** The client lets the connection carry another exchange after this one. */
  readonly keepAlive: boolean;
  /** The plan's refusal, an upgrade the plan does not allow, or no pool to forward to; null: forwarded. */
  readonly answer: LocalAnswer | null;
}

/** The request head at the start of `buf`: 'incomplete' until all of it has arrived. */
export function admitRequest(buf: Buffer, o: SessionOptions): 'incomplete' | RejectedHead | AdmittedRequest {
  const r = parseHead(buf, 0, 'request', o.limits);
  if ('incomplete' in r) return 'incomplete';
  if ('rejected' in r) return { status: r.rejected === 'bad_request' ? 400 : 431, rejected: r.rejected };
  const head = r.head;
  const framing = requestFraming(head);
  if (framing === 'bad_request') return { status: 400, rejected: 'bad_request' };
  if (framing === 'not_implemented') return { status: 501, rejected: 'unsupported_transfer_coding' };
  // RFC 9112 section 3.2: exactly one Host in HTTP/1.1 (two could route differently at two hops).
  const host = headerValue(head, 'host');
  if ((head.minor === 1 && host === undefined) || head.names.indexOf('host') !== head.names.lastIndexOf('host')) {
    return { status: 400, rejected: 'bad_request' };
  }
  // And only uri-host [":" port]: no path, userinfo, second host or stray bytes for an app to build a URL from.
  if (host !== undefined && !isValidHostValue(host)) return { status: 400, rejected: 'bad_request' };

  const now = o.nowMs();
  // Only a protocol on the allow-list switches; any other offer is dropped and the request goes on as a plain one.
  const upgrade = upgradeRequested(head, o.upgrades);
  // Authorized like any request first: a denied upgrade is a 403, never a switch.
  const plan = o.hooks.plan(head);
  const pool = plan.forward ? (plan.route?.resource ?? plan.pool ?? o.pool) : undefined;
  const refusal: readonly [number, RefusalReason] | null = !plan.forward
    ? [plan.status, plan.code]
    : upgrade !== null && plan.upgrade !== true
      ? [501, 'upgrade_unsupported']
      : !pool
        ? [502, 'upstream_unavailable']
        : null;
  const forward = plan.forward && refusal === null;
  // A route's own requestTimeout and minRequestBodyRate (the edge's), over the listener's.
  const limits = plan.forward && plan.limits ? withExchangeLimits(o.limits, plan.limits) : o.limits;
  const ex = new Http1Exchange({
    head,
    context: plan.context,
    pool: pool ?? null,
    route: plan.forward && forward ? plan.route : undefined,
    replayBodyBytes: plan.forward && forward ? plan.replayBodyBytes : undefined,
    startMs: now,
    // Request trailers are dropped (an empty trailer section is sent): they would reach the app unchecked.
    upstreamHead: plan.forward && forward ? upstreamRequestHead(head, plan, upgrade, buf) : NOTHING,
    upgrade: forward ? upgrade : null,
    dropResponse: plan.forward && forward ? plan.dropResponse : undefined,
    totalTimeoutMs: (plan.forward && plan.totalTimeoutMs) || o.totalTimeoutMs,
    requestTimeoutMs: limits.requestTimeoutMs,
    reqFramer: forward ? framerFor(framing, 'drop', o.limits) : null,
    // Only a request with a body is paced: nothing of it is made for the rest (a GET).
    minBodyRate: framing.kind === 'none' ? undefined : { bytesPerSecond: limits.minRequestBodyRate, graceMs: o.limits.headersTimeoutMs },
  });
  return {
    ex,
    rest: buf.length > head.length ? buf.subarray(head.length) : null,
    keepAlive: wantsKeepAlive(head),
    answer: refusal && { status: refusal[0], code: refusal[1], close: framing.kind !== 'none' || upgrade !== null },
  };
}
