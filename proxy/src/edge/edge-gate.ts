// What every edge request passes, whatever the client's protocol: the client's certificate (verified once per
// leaf and identity generation, bans checked per request), a request target that normalizes, a route for its host
// and path, and the edge's authorization; then the headers the upstream gets from the real connection
// (forwarding headers, XFCC for a verified client).
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { errorMessage } from '../../../common/errors.js';
import { normalizeRequestTarget } from '../../../common/policy/normalize-path.js';
import type { RefusalReason } from '../../../common/refusal-reasons.js';
import { fingerprintOf } from '../../../common/spiffe/trust-bundle.js';
import { authorize } from '../authz/authorize.js';
import type { EdgeConfig } from '../config/edge-config.js';
import type { ListenerDeps } from '../listeners/listener-deps.js';
import { deniedBy } from '../tls/deny-list.js';
import { IntermediateMemory } from '../tls/peer-verify.js';
import { SENT_MAX, peerChainHead, sentCertificates } from '../tls/sent-chain.js';
import { sessionLeafHash } from '../tls/session-peer.js';
import { type EdgeClient, type EdgeClientFailure, verifyEdgeClient, xfccFor } from './client-identity.js';
import type { EdgeCertificates } from './edge-certificates.js';
import { EdgeUpstream, edgeMtlsDeps } from './edge-upstreams.js';
import { clientAddressOf, forwardedHeaders, trustedMatcher } from './forwarded-headers.js';
import { type EdgeRoute, selectRoute } from './route-table.js';

/** A request let through: its route, the target to send (normalized) and the policy decision, if any. */
export interface Admitted {
  readonly ok: true;
  readonly upstream: EdgeUpstream;
  readonly target: string;
  readonly decision?: string;
  readonly policy: string | null;
}

/** A request answered by the edge itself. */
export interface Refused {
  readonly ok: false;
  readonly status: number;
  readonly code: RefusalReason;
  readonly upstream?: EdgeUpstream;
  readonly decision?: string;
  readonly policy: string | null;
}

export interface EdgeRequest {
  readonly client: EdgeClient | null | 'invalid';
  readonly method: string;
  readonly host: string | undefined;
  readonly path: string;
  readonly grpc: boolean;
}

export function isFailure(v: EdgeClient | EdgeClientFailure): v is EdgeClientFailure {
  return 'ok' in v;
}

/** What a connection's client sent: its leaf (SHA-256 hex; null: none) and the fingerprints of its chain, once read (null: too many). */
interface SentByClient {
  readonly leaf: string | null;
  sent?: readonly string[] | null;
}

/** The client leaf as the connection's TLS session records it (session-peer.ts), else from Node's certificate. */
function leafHashOf(socket: TLSSocket): string | null {
  const h = sessionLeafHash(socket);
  if (h !== undefined) return h;
  const cert = socket.getPeerCertificate();
  return cert?.fingerprint256 ? fingerprintOf(cert) : null;
}

function onPath(sent: readonly string[], path: ReadonlySet<string>): boolean {
  return sent.every((f) => path.has(f));
}

function unrelated(detail?: string): EdgeClientFailure {
  const code = 'TESSERA_ERR_SVID_UNRELATED_CERT';
  return { ok: false, reason: 'bad_svid', code, message: detail ? `${errorMessage(code)} ${detail}` : errorMessage(code) };
}

export class EdgeGate {
  readonly #config: EdgeConfig;
  readonly #d: ListenerDeps;
  readonly #certs: EdgeCertificates;
  readonly routes: EdgeRoute<EdgeUpstream>[];
  readonly #trusted: (ip: string) => boolean;
  /**
   * What each connection's client sent, read once: every request asks, and building Node's certificate object for
   * the leaf cost ~60 µs a request (edge CPU 86–103 → 32–36 µs per request); the chain can only be read once
   * (tls/sent-chain.ts). It cannot change under a connection: the listener refuses renegotiation
   * (disableRenegotiation) and TLS 1.3 has none. An HTTP/2 session's socket view shares its socket's entry.
   */
  readonly #conns = new WeakMap<object, SentByClient>();
  /** Verified clients by leaf hash, with their path, for the client-CA and identity generations in #clientsKey. */
  readonly #clients = new Map<string, { readonly client: EdgeClient; readonly path: ReadonlySet<string> }>();
  #clientsKey = '';
  readonly #clientIntermediates = new IntermediateMemory();
  /** The listener's port, for policies that name ports. */
  port = 0;
  /** Headers added to every response the edge sends (Strict-Transport-Security when configured); null: none. */
  readonly responseHeaders: Readonly<Record<string, string>> | null;

  constructor(config: EdgeConfig, deps: ListenerDeps, certs: EdgeCertificates) {
    this.#config = config;
    this.#d = deps;
    this.#certs = certs;
    this.#trusted = trustedMatcher(config.trustedProxies);
    this.responseHeaders = config.hstsMaxAge > 0 ? { 'strict-transport-security': `max-age=${config.hstsMaxAge}; includeSubDomains` } : null;
    const mtls = edgeMtlsDeps(deps);
    this.routes = config.routes.map((route) => {
      const upstream = new EdgeUpstream(route, deps, mtls);
      if (route.unsafePlaintext) deps.log.warn({ listener: config.name, host: route.host, pathPrefix: route.pathPrefix, upstream: upstream.label }, 'edge route to a PLAINTEXT upstream (unsafePlaintext: true)');
      return { host: route.host, pathPrefix: route.pathPrefix, upstream };
    });
  }

  /** The client's identity from its certificate, null without one; 'invalid' when it does not verify. */
  client(socket: TLSSocket): EdgeClient | null | 'invalid' {
    if (!this.#config.clientCa) return null;
    // OpenSSL refused the chain already (clientCert: optional): failures are not cached, so building it again on
    // every request of the connection would be wasted work.
    if (!socket.authorized) return this.#leafHash(socket) ? 'invalid' : null;
    const v = this.verifyClient(socket);
    if (v === null) return null;
    // Checked per request too: a ban that lands while the connection is open refuses its next request.
    return isFailure(v) || this.banned(v) ? 'invalid' : v;
  }

  /** The operator banned this client's SPIFFE ID or leaf serial (`tessera revoke`), whichever CA issued it. */
  banned(c: EdgeClient): boolean {
    return deniedBy(this.#d.denyList.current, { idText: c.spiffeId?.toString() ?? '', serial: c.serial }) !== null;
  }

  /** The one client verifier (client-identity.ts): same leaf rules as SVID peers, identity confined to its CA. */
  verifyClient(socket: TLSSocket): EdgeClient | EdgeClientFailure | null {
    if (!this.#config.clientCa) return null;
    const conn = this.#conn(socket);
    const fp = conn.leaf;
    if (!fp) return null;
    const d = this.#d;
    const snapshot = d.identity.current!;
    const key = `${this.#certs.generation}/${snapshot.generation}`;
    if (key !== this.#clientsKey) {
      this.#clients.clear();
      this.#clientsKey = key;
    }
    const now = d.nowMs();
    let chain: X509Certificate[] | null | undefined;
    if (conn.sent === undefined) {
      // A resumed session sends no chain (its leaf is the one verified when it began); a full handshake's is read here.
      if (socket.isSessionReused()) conn.sent = [fp];
      else {
        chain = clientChain(socket);
        conn.sent = chain === null ? null : chain.map(fingerprintOf);
      }
    }
    const sent = conn.sent;
    if (sent === null) return unrelated(`(more than ${SENT_MAX} certificates)`);
    // A known leaf is a hit only if everything this connection sent is on the path verified before.
    const hit = this.#clients.get(fp);
    if (hit && hit.client.notAfterMs > now && onPath(sent, hit.path)) return hit.client;
    // Read again (a later request, or the leaf alone of a resumed session), completed from remembered intermediates.
    chain ??= clientChain(socket) ?? [];
    const trust = { authorities: this.#certs.clientAuthorities, clientTrustDomain: this.#config.clientTrustDomain ?? null, mesh: snapshot.bundles, ownTrustDomain: snapshot.id.trustDomain };
    this.#clientIntermediates.complete(chain);
    const r = verifyEdgeClient(chain, trust, now);
    if (!r.ok) return r;
    const path = new Set([...r.path, ...trust.authorities].map(fingerprintOf));
    // What the connection sent first, when the chain verified now is the leaf alone.
    if (!onPath(sent, path)) return unrelated();
    this.#clientIntermediates.remember(r.path.slice(1, -1));
    if (this.#clients.size >= 1024) this.#clients.clear();
    this.#clients.set(fp, { client: r.client, path });
    return r.client;
  }

  /** An HTTP/2 session's socket view (`view`) is the connection of `socket`: it shares what was read of it. */
  sameConnection(view: object, socket: TLSSocket): void {
    const conn = this.#conns.get(socket);
    if (conn) this.#conns.set(view, conn);
  }

  #conn(socket: TLSSocket): SentByClient {
    let conn = this.#conns.get(socket);
    if (!conn) {
      conn = { leaf: leafHashOf(socket) };
      this.#conns.set(socket, conn);
    }
    return conn;
  }

  /** The connection's client leaf (SHA-256 hex), null without one. */
  #leafHash(socket: TLSSocket): string | null {
    return this.#conn(socket).leaf;
  }

  /**
   * Routing, policy and the upstream all see one target: the normalized path (and the raw query). A fragment or a
   * path that cannot be normalized safely is refused, as on the sidecars (an app cleaning "/public/x#/../admin"
   * would serve "/admin").
   */
  admit(r: EdgeRequest): Admitted | Refused {
    if (r.client === 'invalid') return { ok: false, status: 403, code: 'client_cert_invalid', policy: null };
    const target = normalizeRequestTarget(r.path);
    if (target === null) return { ok: false, status: 400, code: 'bad_request', policy: null };
    const route = selectRoute(this.routes, r.host, target);
    if (!route) return { ok: false, status: 404, code: 'no_route', policy: null };
    const upstream = route.upstream;
    if (!this.#config.authorize) return { ok: true, upstream, target, policy: null };
    const decision = authorize(this.#d, { source: r.client?.spiffeId ?? null, port: this.port, method: r.method, path: target, protocol: r.grpc ? 'grpc' : 'http' });
    if (!decision.allowed) return { ok: false, status: 403, code: 'authz_denied', upstream, decision: 'deny', policy: decision.policy };
    return { ok: true, upstream, target, decision: 'allow', policy: decision.policy };
  }

  /** The client connects from a configured trusted proxy: its forwarding headers are extended, not replaced. */
  trusts(socket: TLSSocket): boolean {
    return this.#trusted(socket.remoteAddress ?? '');
  }

  /**
   * x-forwarded-for/-proto/-host, Forwarded, x-real-ip and, for a verified client, x-forwarded-client-cert. The
   * host fields carry the client's Host (or `:authority`) as it came, port included (RFC 7239 section 5.3, as
   * Envoy): an app building absolute URLs behind an edge on a non-default port needs it. It was checked to be
   * `uri-host [":" port]` before routing.
   */
  upstreamHeaders(socket: TLSSocket, host: string | undefined, client: EdgeClient | null, incoming: { xff?: string; forwarded?: string; proto?: string; clientAddress?: () => Iterable<readonly [string, string]> }): Record<string, string> {
    const remote = socket.remoteAddress ?? '';
    const trusted = this.#trusted(remote);
    const out = forwardedHeaders({ remoteAddress: remote, host: host?.trim() ?? '', incomingXff: incoming.xff, incomingForwarded: incoming.forwarded, incomingProto: incoming.proto, trusted, ...(trusted && incoming.clientAddress ? { incomingClientAddress: clientAddressOf(incoming.clientAddress()) } : {}) });
    if (client) out['x-forwarded-client-cert'] = xfccFor(this.#d.identity.current!.id.toString(), client);
    return out;
  }


  /** Closes idle upstream connections; true while a route's pool still holds one. */
  sweep(): boolean {
    let holds = false;
    for (const r of this.routes) holds = r.upstream.sweep() || holds;
    return holds;
  }

  close(): void {
    for (const r of this.routes) r.upstream.close();
  }
}

/** The client's chain as it linked (sent-chain.ts: never Node's leaking reader), null past SENT_MAX. */
function clientChain(socket: TLSSocket): X509Certificate[] | null {
  const sent = sentCertificates(peerChainHead(socket));
  return sent === null ? null : sent.map((c) => new X509Certificate(c.raw));
}
