// The listeners a config asks for, built over shared deps: used by the one-process proxy (main.ts) and by every
// listener worker (workers/worker-main.ts). Each kind's module is loaded only when the config has one, which keeps
// an idle sidecar's memory down.
import type { InboundConfig, OutboundConfig, ProxyConfig } from '../config/proxy-config.js';
import type { Listener } from './listener.js';
import type { ListenerDeps } from './listener-deps.js';

const isH2 = (c: InboundConfig | OutboundConfig) => c.protocol === 'http2' || c.protocol === 'grpc';
const isProxy = (c: OutboundConfig) => c.route.kind === 'http-proxy';

/** The listeners of `config`, each kind's module loaded only when the config has one. */
export async function makeListeners(config: ProxyConfig, deps: ListenerDeps): Promise<Listener[]> {
  const [inH1, inH2, edge, outH1, outH2, fwd] = await Promise.all([
    config.inbound.some((c) => !isH2(c)) ? import('./inbound-listener.js') : null,
    config.inbound.some(isH2) ? import('./inbound-h2-listener.js') : null,
    config.edge.length > 0 ? import('../edge/edge-listener.js') : null,
    config.outbound.some((c) => !isProxy(c) && !isH2(c)) ? import('./outbound-listener.js') : null,
    config.outbound.some((c) => !isProxy(c) && isH2(c)) ? import('./outbound-h2-listener.js') : null,
    config.outbound.some(isProxy) ? import('./forward-proxy-listener.js') : null,
  ]);
  return [
    ...config.inbound.map((c) => (isH2(c) ? new inH2!.InboundH2Listener(c, deps) : new inH1!.InboundListener(c, deps))),
    ...config.edge.map((c) => new edge!.EdgeListener(c, deps)),
    ...config.outbound.map((c) => (isProxy(c) ? new fwd!.ForwardProxyListener(c, deps) : isH2(c) ? new outH2!.OutboundH2Listener(c, deps) : new outH1!.OutboundListener(c, deps))),
  ];
}
