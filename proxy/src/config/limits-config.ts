// The proxy config's `limits:` and `transport:` keys (DESIGN.md section 8, docs/transport.md): the bounds every
// listener enforces (head sizes, streams, connections, timeouts) and the proxy-to-proxy transport (multiplexing,
// its keepalives, TLS key-exchange groups). Schema, raw shape and defaults.
import type { Schema } from '../../../common/config/schema.js';
import { DEFAULT_TLS_GROUPS, TLS_GROUPS, type TlsGroup } from '../tls/tls-contexts.js';

export interface ProxyLimits {
  readonly maxHeaderBytes: number;
  readonly maxHeaders: number;
  /** Largest response head an HTTP/1.1 upstream (the app, the upstream proxy) may send; larger: 502. */
  readonly maxResponseHeaderBytes: number;
  /** Most header lines in an HTTP/1.1 upstream's response head; more: 502. */
  readonly maxResponseHeaders: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS advertised by every h2 listener; streams beyond it are refused. */
  readonly maxConcurrentStreams: number;
  readonly handshakeTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** Until the response head arrives; a response that has begun is governed by streamIdleTimeoutMs. */
  readonly requestTimeoutMs: number;
  /** No bytes in either direction for this long ends an exchange, a stream or an upgraded connection. */
  readonly streamIdleTimeoutMs: number;
  /** Bytes a second an HTTP/1.1 request body must average while the proxy waits for it, after headersTimeoutMs; 0: off. */
  readonly minRequestBodyRate: number;
  readonly maxConnections: number;
  readonly upstreamPoolSize: number;
  readonly upstreamIdleTimeoutMs: number;
  /** Exchanges a pooled HTTP/1.1 upstream connection carries before it is closed (connection-pool.ts). */
  readonly upstreamMaxRequests: number;
  readonly drainTimeoutMs: number;
  readonly ticketKeyRotationMs: number;
}

/** The multiplexed proxy-to-proxy transport (docs/transport.md). */
export interface TransportSettings {
  /** Offer and accept `tessera-mux/1` between Tessera proxies (HTTP/1.1 listeners); off: a connection per exchange. */
  readonly multiplex: boolean;
  /**
   * A PING after this long with nothing read on a session to a peer proxy (tessera-mux/1, HTTP/2); no answer within
   * keepaliveTimeoutMs ends the session.
   */
  readonly keepaliveIntervalMs: number;
  readonly keepaliveTimeoutMs: number;
  /** Key-exchange groups of inbound listeners and upstream mTLS, in preference order (docs/transport.md). */
  readonly tlsGroups: readonly TlsGroup[];
  /** Multiplexed sessions kept to each peer endpoint, streams on the least loaded (to reach a peer's workers). */
  readonly sessionsPerPeer: number;
}

export const limitsSchema: Schema = {
  type: 'object',
  absentAsEmpty: true,
  properties: {
    maxHeaderBytes: { type: 'number', integer: true, min: 1024, max: 1 << 20, default: 16_384 },
    maxHeaders: { type: 'number', integer: true, min: 8, max: 1000, default: 100 },
    maxResponseHeaderBytes: {
      type: 'number',
      integer: true,
      min: 1024,
      max: 1 << 20,
      default: 65_536,
      description: 'Largest HTTP/1.1 response head from an upstream (502 bad_upstream_response beyond)',
    },
    maxResponseHeaders: {
      type: 'number',
      integer: true,
      min: 8,
      max: 1000,
      default: 200,
      description: 'Most header lines in an HTTP/1.1 response head from an upstream',
    },
    maxConcurrentStreams: {
      type: 'number',
      integer: true,
      min: 1,
      max: 10_000,
      default: 100,
      description: 'HTTP/2 streams open at once per connection (SETTINGS_MAX_CONCURRENT_STREAMS); more are refused',
    },
    handshakeTimeout: { type: 'duration', min: 100, default: '10s' },
    headersTimeout: { type: 'duration', min: 100, default: '10s' },
    idleTimeout: { type: 'duration', min: 100, default: '120s' },
    requestTimeout: {
      type: 'duration',
      min: 100,
      default: '60s',
      description: 'Until the response head arrives (504 request_timeout); a response that has begun is not cut by it',
    },
    streamIdleTimeout: {
      type: 'duration',
      min: 100,
      default: '300s',
      description: 'No bytes in either direction for this long ends an exchange, stream or upgraded (WebSocket) connection',
    },
    minRequestBodyRate: {
      type: 'number',
      integer: true,
      min: 0,
      max: 1_000_000_000,
      default: 240,
      description: 'Bytes a second an HTTP/1.1 request body must average while the proxy waits for it, after headersTimeout (408 request_body_timeout); 0: off',
    },
    maxConnections: { type: 'number', integer: true, min: 1, default: 10_000 },
    upstreamPoolSize: { type: 'number', integer: true, min: 1, max: 10_000, default: 256 },
    upstreamIdleTimeout: { type: 'duration', min: 100, default: '60s' },
    upstreamMaxRequests: {
      type: 'number',
      integer: true,
      min: 1,
      max: 1_000_000,
      default: 1_000,
      description: 'Exchanges a pooled HTTP/1.1 upstream connection carries before it is closed; 1: a connection per exchange',
    },
    drainTimeout: { type: 'duration', min: 0, default: '20s' },
    ticketKeyRotation: { type: 'duration', min: 1_000, default: '1h', description: 'How often inbound session-ticket keys are replaced' },
  },
};

export const transportSchema: Schema = {
  type: 'object',
  absentAsEmpty: true,
  properties: {
    multiplex: {
      type: 'boolean',
      default: true,
      description:
        'Carry the HTTP/1.1 exchanges between two Tessera proxies as streams of one mTLS connection (ALPN tessera-mux/1); peers without it get HTTP/1.1',
    },
    keepaliveInterval: {
      type: 'duration',
      min: 1_000,
      default: '15s',
      description: 'A keepalive PING on a session to a peer proxy (multiplexed, or HTTP/2 and gRPC) after this long with nothing read',
    },
    keepaliveTimeout: {
      type: 'duration',
      min: 1_000,
      default: '20s',
      description: 'A session to a peer proxy whose PING is not answered within this ends (its streams fail)',
    },
    sessionsPerPeer: {
      type: 'number',
      integer: true,
      min: 1,
      max: 16,
      default: 1,
      description:
        "Multiplexed sessions to each peer endpoint, each new stream on the least loaded; more than 1 lets one caller reach a peer's listener workers (SO_REUSEPORT spreads connections)",
    },
    tlsGroups: {
      type: 'array',
      minItems: 1,
      maxItems: TLS_GROUPS.length,
      items: { type: 'string', enum: TLS_GROUPS },
      description: `TLS key-exchange groups between proxies, preferred first (default ${DEFAULT_TLS_GROUPS.join(', ')})`,
    },
  },
};

type LimitKey =
  | 'maxHeaderBytes'
  | 'maxHeaders'
  | 'maxResponseHeaderBytes'
  | 'maxResponseHeaders'
  | 'maxConcurrentStreams'
  | 'handshakeTimeout'
  | 'headersTimeout'
  | 'idleTimeout'
  | 'requestTimeout'
  | 'streamIdleTimeout'
  | 'minRequestBodyRate'
  | 'maxConnections'
  | 'upstreamPoolSize'
  | 'upstreamIdleTimeout'
  | 'upstreamMaxRequests'
  | 'drainTimeout'
  | 'ticketKeyRotation';
/** `limits:` as the schema gives it: every key, its default filled in (absentAsEmpty). */
export type RawLimits = Record<LimitKey, number>;

/** `transport:` as the schema gives it (tlsGroups, a list, has no schema default: DEFAULT_TLS_GROUPS below). */
export interface RawTransport {
  multiplex: boolean;
  keepaliveInterval: number;
  keepaliveTimeout: number;
  tlsGroups?: TlsGroup[];
  sessionsPerPeer: number;
}

/** `limits:` in milliseconds (the defaults are the schema's, filled in by the validator). */
export function resolveLimits(l: RawLimits): ProxyLimits {
  return {
    maxHeaderBytes: l.maxHeaderBytes,
    maxHeaders: l.maxHeaders,
    maxResponseHeaderBytes: l.maxResponseHeaderBytes,
    maxResponseHeaders: l.maxResponseHeaders,
    maxConcurrentStreams: l.maxConcurrentStreams,
    handshakeTimeoutMs: l.handshakeTimeout,
    headersTimeoutMs: l.headersTimeout,
    idleTimeoutMs: l.idleTimeout,
    requestTimeoutMs: l.requestTimeout,
    streamIdleTimeoutMs: l.streamIdleTimeout,
    minRequestBodyRate: l.minRequestBodyRate,
    maxConnections: l.maxConnections,
    upstreamPoolSize: l.upstreamPoolSize,
    upstreamIdleTimeoutMs: l.upstreamIdleTimeout,
    upstreamMaxRequests: l.upstreamMaxRequests,
    drainTimeoutMs: l.drainTimeout,
    ticketKeyRotationMs: l.ticketKeyRotation,
  };
}

/** `transport:` resolved; a key-exchange group listed twice is a `problem`. */
export function resolveTransport(t: RawTransport, problem: (keyPath: (string | number)[], message: string) => never): TransportSettings {
  const groups = t.tlsGroups ?? [];
  const dup = groups.findIndex((g, i) => groups.indexOf(g) !== i);
  if (dup >= 0) problem(['transport', 'tlsGroups', dup], `"${groups[dup]}" is listed twice`);
  return {
    multiplex: t.multiplex,
    keepaliveIntervalMs: t.keepaliveInterval,
    keepaliveTimeoutMs: t.keepaliveTimeout,
    tlsGroups: t.tlsGroups ?? DEFAULT_TLS_GROUPS,
    sessionsPerPeer: t.sessionsPerPeer,
  };
}
