// The edge's upstreams, one per route, reached over mTLS with the route's SPIFFE ID (secure naming) or in
// plaintext (unsafePlaintext). `http` routes: one pool of HTTP/1.1 exchanges (streams of the multiplexed session to a
// Tessera peer, keep-alive connections otherwise) for HTTP/1.1 clients on the lean forwarder and for HTTP/2 clients,
// whose requests node:http re-makes through an agent over that same pool: one bound, limits.upstreamPoolSize, for
// both; `http2`/`grpc` routes: long-lived multiplexed HTTP/2 sessions shared by every stream.

import type { EdgeRouteConfig } from '../config/edge-config.js';
import { peerKeepalive } from '../h2/h2-keepalive.js';
import { H2Upstream } from '../h2/h2-upstream.js';
import { meshPool } from '../listeners/endpoint-dial.js';
import type { ListenerDeps } from '../listeners/listener-deps.js';
import { PeerVerifier } from '../tls/peer-verify.js';
import { ConnectionPool } from '../upstream/connection-pool.js';
import { type MtlsDeps, plainConnector } from '../upstream/connectors.js';
import { mtlsH2Opener } from '../upstream/mtls-h2-opener.js';
import { PoolAgent } from '../upstream/pool-agent.js';
import { UpstreamRefusalLog } from '../upstream/upstream-refusal-log.js';

export class EdgeUpstream {
  readonly route: EdgeRouteConfig;
  /** host:port for logs and spans. */
  readonly label: string;
  /** host:port as a Host header value (IPv6 in brackets). */
  readonly authority: string;
  /** HTTP/1.1 routes only: HTTP/1.1 and HTTP/2 clients' exchanges alike. */
  readonly pool: ConnectionPool | null;
  /** HTTP/2 and gRPC routes only. */
  readonly h2: H2Upstream | null;
  #agent: PoolAgent | null = null;

  constructor(route: EdgeRouteConfig, deps: ListenerDeps, mtls: MtlsDeps) {
    this.route = route;
    const { host, port } = route.upstream;
    this.label = `${host}:${port}`;
    this.authority = host.includes(':') ? `[${host}]:${port}` : this.label;
    const target = route.spiffeId ? { host, port, expectedId: route.spiffeId, alpn: ['http/1.1'] } : null;
    if (route.protocol === 'http') {
      this.h2 = null;
      this.pool = target
        ? meshPool(target, mtls, deps)
        : new ConnectionPool({
            connect: plainConnector(host, port, deps.limits.handshakeTimeoutMs, () => deps.metrics.upstreamConnectionOpened('edge')),
            maxConnections: deps.limits.upstreamPoolSize,
            maxQueue: deps.limits.maxConnections,
            idleTimeoutMs: deps.limits.upstreamIdleTimeoutMs,
            maxRequests: deps.limits.upstreamMaxRequests,
            nowMs: deps.nowMs,
            timers: deps.timers,
          });
    } else {
      this.pool = null;
      const common = { idleMs: deps.limits.upstreamIdleTimeoutMs, maxSessions: deps.limits.upstreamPoolSize, settingsTimeoutMs: deps.limits.headersTimeoutMs, nowMs: deps.nowMs, timers: deps.timers };
      this.h2 = new H2Upstream(
        target
          ? // New streams after an SVID or bundle change go to a session handshaken with it; older sessions drain.
            // A sidecar's inbound listener: a peer proxy, PINGed as the outbound listeners' (h2-keepalive.ts).
            { ...common, authority: `https://${this.authority}`, open: mtlsH2Opener(target, mtls), generation: () => deps.identity.current?.generation ?? 0, ...peerKeepalive(deps) }
          : { ...common, authority: `http://${this.authority}`, onConnected: () => deps.metrics.upstreamConnectionOpened('edge') },
      );
    }
  }

  /** The node:http agent HTTP/2 clients of an `http` route go through (their requests re-made as HTTP/1.1): the pool's. */
  get agent(): PoolAgent {
    this.#agent ??= new PoolAgent(this.pool!);
    return this.#agent;
  }

  /** The pool's sweep (idle connections, the multiplexed session's keepalive), or the HTTP/2 sessions' keepalive. */
  sweep(): boolean {
    return this.pool?.sweep() ?? this.h2?.sweep() ?? false;
  }

  close(): void {
    this.pool?.close();
    this.h2?.close();
  }
}

/** One verifier and handshake metrics (direction "edge") for every route of a listener. */
export function edgeMtlsDeps(deps: ListenerDeps): MtlsDeps {
  const failures = new UpstreamRefusalLog(deps.log, deps.nowMs, 'edge');
  const onFailed = (upstream: string, expected: string, reason: string, err: Error) => failures.note(upstream, expected, reason, err);
  return { identity: deps.identity, contexts: deps.clientContexts, verifier: new PeerVerifier(), denyList: deps.denyList, metrics: deps.metrics, nowMs: deps.nowMs, handshakeTimeoutMs: deps.limits.handshakeTimeoutMs, direction: 'edge', onFailed };
}
