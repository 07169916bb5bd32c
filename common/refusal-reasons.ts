// The short reasons the proxy gives a peer when it refuses or cuts a request (the `x-tessera-error` header and
// body, or `grpc-message` on a gRPC stream) and counts in tessera_requests_rejected_total{reason}: one typed list,
// each with the HTTP statuses it is answered with, its gRPC status and its meaning. A peer learns only the
// reason, never the internal detail. docs/errors.md shows the list as a table; a test keeps the two in sync.
import { GRPC_STATUS, type GrpcStatus } from './grpc-status-codes.js';

export interface RefusalReasonEntry {
  /** HTTP statuses the reason is answered with, the usual one first; empty: never answered (the connection is closed). */
  readonly http: readonly number[];
  /** grpc-status of the trailers-only answer on a gRPC stream; null: never answered on one. */
  readonly grpc: GrpcStatus | null;
  readonly meaning: string;
}

const { DEADLINE_EXCEEDED, INTERNAL, PERMISSION_DENIED, UNAVAILABLE, UNIMPLEMENTED } = GRPC_STATUS;

export const REFUSAL_REASONS = {
  // --- The request ---
  bad_request: { http: [400], grpc: INTERNAL, meaning: 'The request is malformed (request line, a header, body framing, or a target with a fragment), or is a CONNECT to a listener that carries no tunnels (all but an outbound mode: http-proxy one).' },
  header_too_large: { http: [431], grpc: null, meaning: 'The request head is larger than limits.maxHeaderBytes.' },
  too_many_headers: { http: [431], grpc: null, meaning: 'The request has more header lines than limits.maxHeaders.' },
  unsupported_transfer_coding: { http: [501], grpc: null, meaning: 'The request body uses a transfer coding other than chunked.' },
  upgrade_unsupported: { http: [501], grpc: null, meaning: 'The request asks for a protocol upgrade the listener does not allow.' },
  http2_required: { http: [505], grpc: null, meaning: 'The edge route forwards only HTTP/2 and the request came over HTTP/1.1.' },
  // --- Time limits ---
  headers_timeout: { http: [408], grpc: null, meaning: 'The request head did not arrive within limits.headersTimeout.' },
  idle_timeout: { http: [408], grpc: null, meaning: 'The connection stayed idle between requests for limits.idleTimeout (an idle connection is closed without an answer).' },
  request_timeout: { http: [504], grpc: DEADLINE_EXCEEDED, meaning: 'The upstream\'s response head did not arrive within limits.requestTimeout.' },
  total_timeout: { http: [504], grpc: DEADLINE_EXCEEDED, meaning: 'The exchange took longer than its listener\'s or route\'s timeout.' },
  stream_idle_timeout: { http: [504, 408], grpc: DEADLINE_EXCEEDED, meaning: 'No byte moved either way for limits.streamIdleTimeout (408 while the client\'s own request body stalls).' },
  request_body_timeout: { http: [408], grpc: null, meaning: 'The HTTP/1.1 request body arrived slower than limits.minRequestBodyRate bytes a second, averaged after a grace of limits.headersTimeout, while the proxy was waiting for it.' },
  // --- Who may call ---
  authz_denied: { http: [403], grpc: PERMISSION_DENIED, meaning: 'The authorization policy does not allow this caller, method or path.' },
  client_cert_invalid: { http: [403], grpc: PERMISSION_DENIED, meaning: 'The edge client certificate does not verify or names an identity its CA may not assert.' },
  no_route: { http: [404], grpc: UNIMPLEMENTED, meaning: 'No edge route matches the request\'s host and path.' },
  // --- The upstream ---
  no_endpoints: { http: [503], grpc: UNAVAILABLE, meaning: 'The service routed to has no ready endpoint: none registered (a removed one draining does not count) or none the registry marks ready. Ejected endpoints are not this: when every ready endpoint is ejected, requests go to them (panic mode).' },
  unknown_service: { http: [503], grpc: UNAVAILABLE, meaning: 'A forward-proxy (http-proxy) request names a host that is no known service.' },
  not_ready: { http: [503], grpc: UNAVAILABLE, meaning: 'The proxy has no SVID yet, so it cannot open mTLS connections.' },
  upstream_unavailable: { http: [502, 503], grpc: UNAVAILABLE, meaning: 'No upstream connection could be had: connecting failed (refused, timed out, or the TLS handshake refused, e.g. the upstream presented another SPIFFE ID or an expired certificate: see tessera_tls_handshakes_total) or the pool is closing (502), or every connection is busy and the wait queue is full (503).' },
  upstream_reset: { http: [502], grpc: UNAVAILABLE, meaning: 'The upstream closed or reset the connection before its response was complete.' },
  bad_upstream_response: { http: [502], grpc: UNAVAILABLE, meaning: 'The upstream\'s response is malformed (head, framing, or an unrequested 101).' },
  // --- The connection ---
  too_many_connections: { http: [], grpc: null, meaning: 'The listener already holds limits.maxConnections connections; the new one is closed at accept (counted only).' },
  http2_flood: { http: [], grpc: null, meaning: 'An HTTP/2 client sent frames that make work for nothing faster than nghttp2 allows (SETTINGS, PING or empty frames, CONTINUATION after CONTINUATION), more control traffic than the server sent it reason for (WINDOW_UPDATE frames above all, and padding in DATA frames, which node:http2 does not show: past 64 KiB plus 4 bytes per byte written to it, header fields counted as the bytes they took on the wire, then GOAWAY ENHANCE_YOUR_CALM), or more than 1,000 frames the listener had to refuse (streams over limits.maxConcurrentStreams before it acknowledged them, malformed requests): its connection is closed (counted only). Every HTTP/2 server: the proxies\' listeners, the Workload API socket, the control plane\'s gRPC port.' },
  http2_protocol_error: { http: [], grpc: null, meaning: 'An HTTP/2 client broke the protocol at the connection level (a frame where none may be, a header block that does not decode, a PRIORITY storm): its connection is closed with GOAWAY (counted only).' },
  premature_reset: { http: [], grpc: null, meaning: 'An HTTP/2 client reset more of its streams before their answer than limits.maxConcurrentStreams (at least 100): at the edge and on outbound h2c listeners, once they are also more than half of its closed streams, its connection is closed with GOAWAY ENHANCE_YOUR_CALM; an inbound listener drains it, and a peer proxy\'s multiplexed session the same way (counted only).' },
  // --- Request messages on the grpc-js servers ---
  message_timeout: { http: [], grpc: null, meaning: 'A request message begun on a stream of a grpc-js server (the control plane\'s gRPC port, the Workload API socket) did not arrive whole within the message deadline (the control plane\'s limits.headersTimeout, 10 s on the socket): the stream is reset with RST_STREAM CANCEL within a second after it (counted only).' },
  message_bytes: { http: [], grpc: null, meaning: 'A request stream\'s DATA on a grpc-js server (the control plane\'s gRPC port, the Workload API socket) would take the bytes of unfinished request messages past 2 x the largest message read on its connection, or 64 x across the server: the stream is reset at once, with RST_STREAM REFUSED_STREAM when none of its messages was delivered yet (a client may retry it), CANCEL otherwise (counted only).' },
} as const satisfies Record<string, RefusalReasonEntry>;

export type RefusalReason = keyof typeof REFUSAL_REASONS;

export const REFUSAL_REASON_NAMES = Object.keys(REFUSAL_REASONS) as readonly RefusalReason[];

export function isRefusalReason(s: unknown): s is RefusalReason {
  return typeof s === 'string' && Object.hasOwn(REFUSAL_REASONS, s);
}

/** The usual HTTP status of an answered reason (500 for one that is never answered, which is a caller's bug). */
export function refusalStatus(reason: RefusalReason): number {
  return REFUSAL_REASONS[reason].http[0] ?? 500;
}

/**
 * Whether a stream_idle_timeout is the client's own doing: nothing moved either way while its request body was still
 * incomplete AND nothing of it was waiting to go upstream (`heldUpstream`: request bytes unflushed toward the
 * upstream, the client paused by the upstream's backpressure). A client that stopped sending while the upstream
 * would take more stalled (408, the attempt `cancelled`); an upstream that stopped reading the body is the
 * endpoint's stall (504, charged `timeout`), not the client's. One rule for the answer (cutStatus) and for what the
 * cut says about the endpoint (exchangeOutcome).
 */
export function stalledByClient(flag: string | undefined, requestComplete: boolean, heldUpstream: boolean): boolean {
  return flag === 'stream_idle_timeout' && !requestComplete && !heldUpstream;
}

/**
 * The HTTP status of a deadline cut answered before the response head, on HTTP/1.1 and HTTP/2 alike: 408 for a
 * client that stalled its own request body (stalledByClient), else the reason's usual status (504).
 */
export function cutStatus(reason: RefusalReason, requestComplete: boolean, heldUpstream: boolean): number {
  return stalledByClient(reason, requestComplete, heldUpstream) ? 408 : refusalStatus(reason);
}

/**
 * Whether request bytes are waiting to go to the upstream on `w` (a socket, an HTTP/2 stream, a ClientRequest):
 * written and not yet flushed, or past its high-water mark (the client is held back until it drains).
 */
export function unflushed(w: { readonly writableLength?: number; readonly writableNeedDrain?: boolean } | null | undefined): boolean {
  return !!w && ((w.writableLength ?? 0) > 0 || w.writableNeedDrain === true);
}

/** The grpc-status for a reason on a gRPC stream (UNKNOWN for one never sent on a stream). */
export function refusalGrpcStatus(reason: RefusalReason): GrpcStatus {
  return REFUSAL_REASONS[reason].grpc ?? GRPC_STATUS.UNKNOWN;
}
