// How a listener dials the endpoints of a balanced service: each endpoint its own mTLS target (its address, the
// SPIFFE ID discovery gave it — secure naming per connection), and its own resource: a keep-alive pool for
// HTTP/1.1, a session-ticket memory for TCP and CONNECT tunnels. The ALPN offered follows the endpoint's protocol.
import type { EndpointProtocol, ServiceEndpoint } from '../../../common/routing/service-endpoint.js';
import { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import type { TLSSocket } from 'node:tls';
import { connectFailureReason, type ExchangeRoute } from '../routing/exchange-route.js';
import { MuxDialer } from '../mux/mux-dialer.js';
import { ConnectionPool } from '../upstream/connection-pool.js';
import { type MtlsDeps, type MtlsTarget, mtlsConnect, mtlsConnector, type SessionMemory } from '../upstream/connectors.js';
import type { VerdictWatch } from '../upstream/peer-verdict.js';
import type { ListenerDeps } from './listener-deps.js';

/** What an endpoint's inbound listener negotiates: HTTP/1.1, h2 (HTTP/2 and gRPC), or nothing (raw TCP). */
export const ALPN_FOR: Readonly<Record<EndpointProtocol, readonly string[]>> = { http: ['http/1.1'], http2: ['h2'], grpc: ['h2'], tcp: [] };

export function endpointTarget(ep: ServiceEndpoint, alpn: readonly string[], allowHalfOpen = false): MtlsTarget {
  return { host: ep.host, port: ep.port, expectedId: SpiffeId.parse(ep.spiffeId), alpn, allowHalfOpen };
}

/** A keep-alive pool of HTTP/1.1 exchanges to one endpoint. */
export function endpointPool(ep: ServiceEndpoint, mtls: MtlsDeps, deps: ListenerDeps): ConnectionPool {
  return meshPool(endpointTarget(ep, ALPN_FOR.http), mtls, deps);
}

/**
 * The pool of HTTP/1.1 exchanges to one peer proxy: streams of one multiplexed mTLS session when the transport is
 * on (a peer without it gets a connection per exchange), else a keep-alive connection each. Sized by
 * upstreamPoolSize either way: exchanges in flight at once, the rest queued.
 */
export function meshPool(target: MtlsTarget, mtls: MtlsDeps, deps: ListenerDeps): ConnectionPool {
  const t = deps.transport;
  const mux = t.multiplex
    ? new MuxDialer(target, mtls, { keepaliveIntervalMs: t.keepaliveIntervalMs, keepaliveTimeoutMs: t.keepaliveTimeoutMs, idleTimeoutMs: deps.limits.upstreamIdleTimeoutMs, metrics: deps.metrics.mux, sessions: t.sessionsPerPeer })
    : null;
  return new ConnectionPool({
    connect: mux ? mux.connect : mtlsConnector(target, mtls),
    maxConnections: deps.limits.upstreamPoolSize,
    maxQueue: deps.limits.maxConnections,
    idleTimeoutMs: deps.limits.upstreamIdleTimeoutMs,
    nowMs: deps.nowMs,
    timers: deps.timers,
    // A peer proxy frames its answers: the bound is for HTTP/1.1 connections, not a session's pooled streams.
    ...(mux ? { onSweep: () => mux.sweep(), onClose: () => mux.close() } : { maxRequests: deps.limits.upstreamMaxRequests }),
  });
}

/** A connection-per-connection endpoint (TCP, CONNECT): where to dial, and its last session ticket. */
export interface TunnelEndpoint {
  readonly target: MtlsTarget;
  readonly session: SessionMemory;
}

export function tunnelEndpoint(ep: ServiceEndpoint): TunnelEndpoint {
  return { target: endpointTarget(ep, ALPN_FOR[ep.protocol], true), session: {} };
}

/**
 * Opens the tunnel of `route`'s current attempt; a connection that fails (refused, TLS, secure naming) is tried on
 * another endpoint of the service while the route allows. `done` gets the socket or the last failure.
 */
export function dialRoute(route: ExchangeRoute<TunnelEndpoint>, mtls: MtlsDeps, done: (err: Error | null, socket?: TLSSocket, resumed?: boolean, verdict?: VerdictWatch) => void): void {
  const attempt = () => {
    const ep = route.resource;
    mtlsConnect(ep.target, mtls, ep.session, (err, socket, resumed, _retired, verdict) => {
      if (!err && socket) {
        route.responded();
        done(null, socket, resumed, verdict);
      } else if (route.retry(connectFailureReason(err), false)) attempt();
      else done(err ?? new Error('connect failed'));
    });
  };
  attempt();
}
