// The edge's HTTP/1.1 clients on the lean forwarder (http1/http1-session.ts): per request the gate decides
// (client certificate, target, route, policy), then the head goes to the route's upstream pool with the forwarding
// headers from the real connection, XFCC for a verified client and the span's traceparent, and what the client
// sent under those names removed.
import type { TLSSocket } from 'node:tls';
import { type HttpHead, headerValue, joinedHeaderValue } from '../http1/http1-head.js';
import { Http1Session } from '../http1/http1-session.js';
import type { ExchangeRecord, RequestPlan } from '../http1/http1-session-types.js';
import { APP_RESPONSE_DROP, EDGE_CLIENT_DROP } from '../listeners/app-owned-fields.js';
import type { ListenerDeps } from '../listeners/listener-deps.js';
import type { ExchangeRecorder } from '../telemetry/exchange-recorder.js';
import { incomingTraceOf, traceLines } from '../telemetry/trace-headers.js';
import { beginExchange, type EdgeExchange, noteAdmission, recordExchange } from './edge-exchange.js';
import type { EdgeGate } from './edge-gate.js';

/** Set by the edge from the real connection, or the edge's to set: never taken from the client. */
const STRIP: ReadonlySet<string> = EDGE_CLIENT_DROP.with(['http2-settings']);

export interface EdgeHttp1Deps {
  readonly d: ListenerDeps;
  readonly gate: EdgeGate;
  readonly recorder: ExchangeRecorder;
  readonly listener: string;
}

/** Serves one TLS connection that negotiated http/1.1 (or no ALPN). */
export function edgeHttp1Session(socket: TLSSocket, o: EdgeHttp1Deps): Http1Session {
  const { d, gate } = o;
  const resumed = socket.isSessionReused();
  const trusted = gate.trusts(socket);
  let memo: { host: string | undefined; client: unknown; lines: string } | undefined;
  return new Http1Session(socket, {
    limits: d.limits,
    responseLimits: { maxHeaderBytes: d.limits.maxResponseHeaderBytes, maxHeaders: d.limits.maxResponseHeaders },
    upgrades: d.upgrades,
    // No default pool: every forwarded request names its route's (the plan's `pool`).
    ...(gate.responseHeaders ? { responseHeaders: gate.responseHeaders } : {}),
    // A connection that sends nothing at all is cut at headersTimeout, as one that starts a head and stalls.
    firstHeadTimeout: true,
    nowMs: d.nowMs,
    timers: d.timers,
    hooks: {
      plan: (head: HttpHead): RequestPlan & { context: EdgeExchange } => {
        const client = gate.client(socket);
        const method = head.method!;
        const path = head.target!;
        const host = headerValue(head, 'host');
        const x = beginExchange(d, { protocol: 'http', client, method, path, resumed }, host, d.tracer ? incomingTraceOf(head) : undefined);
        const a = gate.admit({ client, method, host, path, grpc: false });
        noteAdmission(x, a);
        if (!a.ok) return { forward: false, status: a.status, code: a.code, context: x };
        const up = a.upstream;
        // An HTTP/2-only upstream cannot take an HTTP/1.1 request from this path (not translated).
        if (!up.pool) return { forward: false, status: 505, code: 'http2_required', context: x };
        // An untrusted client's forwarding headers depend on its host and identity only: built once per connection.
        let add: string;
        if (!trusted && memo && memo.host === host && memo.client === client) add = memo.lines;
        else {
          const fwd = gate.upstreamHeaders(socket, host, client === 'invalid' ? null : client, { xff: joinedHeaderValue(head, 'x-forwarded-for'), forwarded: joinedHeaderValue(head, 'forwarded'), proto: headerValue(head, 'x-forwarded-proto'), clientAddress: () => head.names.map((n, i) => [n, head.values[i]!] as const) });
          add = '';
          for (const k in fwd) add += `${k}: ${fwd[k]}\r\n`;
          if (!trusted) memo = { host, client, lines: add };
        }
        // HTTP/1.0 may come without Host; strict apps want one.
        if (host === undefined) add += `host: ${up.authority}\r\n`;
        if (x.span) add += traceLines(x.span);
        // Upgrades (a protocol in `upgrades:`) were authorized above like any request; after the app's 101 bytes flow both ways.
        // A plain upstream is an app: its copies of what only a proxy says are dropped (a sidecar's refusals pass).
        const dropResponse = up.route.spiffeId ? undefined : APP_RESPONSE_DROP;
        return { forward: true, strip: STRIP, add, pool: up.pool, upgrade: true, context: x, target: a.target !== path ? a.target : undefined, totalTimeoutMs: up.route.timeoutMs || undefined, limits: up.route, ...(dropResponse ? { dropResponse } : {}) };
      },
      // The record has the outcome's fields (status, bytes, error, responseFlags): passed as is.
      done: (r: ExchangeRecord, ctx: unknown) => recordExchange(o.recorder, o.listener, ctx as EdgeExchange, r, r.endMs),
      rejected: (reason: string) => d.metrics.rejected('edge', reason),
      upgraded: (delta: 1 | -1) => d.metrics.upgradedConnection('edge', delta),
    },
  });
}
