// How an outbound listener dials its upstream proxy: mTLS with this proxy's SVID, the upstream's SVID verified
// and required to be exactly the configured SPIFFE ID (secure naming), deny-listed upstreams refused. Shared by
// the HTTP/1.1+TCP and the HTTP/2 outbound listeners.
import type { OutboundConfig } from '../config/proxy-config.js';
import { PeerVerifier } from '../tls/peer-verify.js';
import type { MtlsDeps, MtlsTarget } from '../upstream/connectors.js';
import type { ListenerDeps } from './listener-deps.js';

/** The dial settings of `config`'s upstream, offering `alpn`. */
export function outboundTarget(config: OutboundConfig, alpn: string[], allowHalfOpen = false): MtlsTarget {
  return { host: config.upstream.host, port: config.upstream.port, expectedId: config.spiffeId, alpn, allowHalfOpen };
}

/** What the mTLS connector needs, from the listener's deps. */
export function outboundMtls(deps: ListenerDeps): MtlsDeps {
  return {
    identity: deps.identity,
    contexts: deps.clientContexts,
    verifier: new PeerVerifier(),
    denyList: deps.denyList,
    metrics: deps.metrics,
    nowMs: deps.nowMs,
    handshakeTimeoutMs: deps.limits.handshakeTimeoutMs,
    direction: 'outbound',
  };
}
