// How an outbound listener dials its upstream proxy: mTLS with this proxy's SVID, the upstream's SVID verified
// and required to be exactly the configured SPIFFE ID (secure naming), deny-listed upstreams refused. Shared by
// the HTTP/1.1+TCP and the HTTP/2 outbound listeners.
import type { OutboundConfig } from '../config/proxy-config.js';
import { PeerVerifier } from '../tls/peer-verify.js';
import type { MtlsDeps, MtlsTarget } from '../upstream/connectors.js';
import { UpstreamRefusalLog } from '../upstream/upstream-refusal-log.js';
import type { ListenerDeps } from './listener-deps.js';

/** The dial settings of a static route's upstream, offering `alpn`. */
export function outboundTarget(config: OutboundConfig, alpn: string[], allowHalfOpen = false): MtlsTarget {
  const r = staticRoute(config);
  return { host: r.upstream.host, port: r.upstream.port, expectedId: r.spiffeId, alpn, allowHalfOpen };
}

/** The fixed upstream of a listener configured with `upstream:`. */
export function staticRoute(config: OutboundConfig): Extract<OutboundConfig['route'], { kind: 'static' }> {
  if (config.route.kind !== 'static') throw new Error(`outbound ${config.name} routes to ${config.route.kind}, not a fixed upstream`);
  return config.route;
}

/** What the mTLS connector needs, from the listener's deps. */
export function outboundMtls(deps: ListenerDeps): MtlsDeps {
  const failures = new UpstreamRefusalLog(deps.log, deps.nowMs, 'outbound');
  return {
    identity: deps.identity,
    contexts: deps.clientContexts,
    verifier: new PeerVerifier(),
    denyList: deps.denyList,
    metrics: deps.metrics,
    nowMs: deps.nowMs,
    handshakeTimeoutMs: deps.limits.handshakeTimeoutMs,
    direction: 'outbound',
    onFailed: (upstream, expected, reason, err) => failures.note(upstream, expected, reason, err),
  };
}
