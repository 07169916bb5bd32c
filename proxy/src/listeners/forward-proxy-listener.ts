// The forward-proxy outbound listener (`mode: http-proxy`): an app configured with HTTP_PROXY sends its plain
// HTTP requests in absolute form (`GET http://api.default/path`) and opens CONNECT tunnels for everything else
// (TCP, TLS inside the app, gRPC). Each is routed by its host to the known service of that name, balanced per
// request (HTTP) or per tunnel (CONNECT) over the service's endpoints, over mTLS with secure naming per endpoint.
// A host that is no known service is refused (503 unknown_service): NO_PROXY is how an app reaches the rest.
import * as net from 'node:net';
import type { OutboundConfig } from '../config/proxy-config.js';
import { type HttpHead, headerValue } from '../http1/http1-head.js';
import type { ExchangeRecord, RequestPlan, SessionHooks } from '../http1/http1-session-types.js';
import { ExchangeRoute, exchangeOutcome, retryableMethod, tunnelOutcome } from '../routing/exchange-route.js';
import type { EndpointView } from '../routing/lease.js';
import { serviceOfHost, splitAbsoluteTarget } from '../routing/service-host.js';
import type { RequestSpan } from '../telemetry/tracing.js';
import { incomingTraceOf, TRACE_FIELDS, traceLines } from '../telemetry/trace-headers.js';
import type { ConnectionPool } from '../upstream/connection-pool.js';
import { readFirstRequest } from './connect-sniff.js';
import { dialRoute } from './endpoint-dial.js';
import type { ListenerDeps } from './listener-deps.js';
import { outboundMtls } from './outbound-mtls.js';
import { ServedListener } from './served-listener.js';
import { poolBalancers, tunnelBalancers } from './service-routing.js';
import { closeUnused, refusalGuard, relay, tunnelStatus } from './tcp-relay.js';

interface ProxyContext {
  readonly requestId: string;
  readonly span: RequestSpan | undefined;
  readonly path: string;
  readonly route: ExchangeRoute<ConnectionPool> | null;
}

/** Sent upstream neither: they are for this proxy (RFC 9110 section 7.6.1 lists Proxy-Connection's kin). */
const STRIP: ReadonlySet<string> = new Set(['proxy-connection', 'proxy-authorization', ...TRACE_FIELDS]);
const ESTABLISHED = Buffer.from('HTTP/1.1 200 Connection established\r\n\r\n', 'latin1');

function refusal(status: number, code: string): Buffer {
  const text = status === 503 ? 'Service Unavailable' : status === 431 ? 'Request Header Fields Too Large' : status === 502 ? 'Bad Gateway' : 'Bad Request';
  return Buffer.from(`HTTP/1.1 ${status} ${text}\r\ncontent-type: text/plain\r\nx-tessera-error: ${code}\r\ncontent-length: ${code.length + 1}\r\nconnection: close\r\n\r\n${code}\n`, 'latin1');
}

export class ForwardProxyListener extends ServedListener<OutboundConfig> {
  readonly #pools;
  readonly #tunnels;
  readonly #mtls;
  /** The same for every connection: made once, not per connection. */
  readonly #hooks: Pick<SessionHooks, 'plan' | 'done'>;

  constructor(config: OutboundConfig, deps: ListenerDeps) {
    const server = net.createServer({ allowHalfOpen: true, noDelay: true });
    const mtls = outboundMtls(deps);
    const { balancers: pools, sweep } = poolBalancers(deps, mtls);
    super('outbound', config, deps, server, sweep);
    this.plainTcpClients = true;
    this.#hooks = this.#httpHooks();
    this.#pools = pools;
    this.#tunnels = tunnelBalancers(deps);
    this.#mtls = mtls;
    this.onClose(() => {
      pools.close();
      this.#tunnels.close();
    });
    server.on('connection', (s: net.Socket) => this.#onConnection(s));
  }

  /** Services this listener has routed to so far; CONNECT tunnels' endpoints are listed under `<service> (connect)`. */
  endpoints(): Record<string, readonly EndpointView[]> {
    const out: Record<string, readonly EndpointView[]> = { ...this.#pools.views() };
    for (const [service, views] of Object.entries(this.#tunnels.views())) out[`${service} (connect)`] = views;
    return out;
  }

  /** A service the directory lists, or one this listener balanced before: one that lost its endpoints is no_endpoints. */
  #known = (name: string) => this.d.routing!.directory.get(name) !== undefined || this.#pools.has(name);

  #onConnection(socket: net.Socket): void {
    this.countConnection(socket);
    this.sessions.addSocket(socket);
    socket.once('error', () => socket.destroy());
    readFirstRequest(socket, this.d.limits, this.d.timers, (r) => {
      if (r.kind === 'http') {
        this.#http(socket);
        socket.resume();
      } else if (r.kind === 'connect') this.#connect(socket, r.authority, r.rest);
      else if (r.kind === 'rejected') {
        this.d.metrics.rejected('outbound', r.reason);
        socket.end(refusal(r.status, r.reason));
      } else {
        if (r.kind === 'timeout') this.d.metrics.rejected('outbound', 'headers_timeout');
        socket.destroy();
      }
    });
  }

  #http(socket: net.Socket): void {
    this.serveHttp1(socket, null, this.#hooks);
  }

  #httpHooks(): Pick<SessionHooks, 'plan' | 'done'> {
    const d = this.d;
    return {
      plan: (head: HttpHead): RequestPlan & { context: ProxyContext } => {
        const requestId = d.requestId();
        const absolute = splitAbsoluteTarget(head.target!);
        const path = absolute?.path ?? head.target!;
        const span = d.tracer?.start(head.method!, 'outbound', incomingTraceOf(head), { 'tessera.request_id': requestId });
        const refuse = (status: number, code: 'not_ready' | 'unknown_service' | 'no_endpoints' | 'upstream_unavailable') => ({ forward: false as const, status, code, context: { requestId, span, path, route: null } });
        if (!d.identity.current) return refuse(503, 'not_ready');
        const service = serviceOfHost(absolute?.authority ?? headerValue(head, 'host') ?? '', this.#known);
        const deps = service === null ? undefined : this.#pools.route(service);
        if (!deps) return refuse(503, 'unknown_service');
        const route = ExchangeRoute.open(deps);
        if (!route) return refuse(503, 'no_endpoints');
        const context = { requestId, span, path, route };
        // Plain HTTP/1.1 reaches HTTP/1.1 endpoints; HTTP/2 and gRPC services are reached through CONNECT.
        if (route.lease.endpoint.protocol !== 'http') {
          route.end('cancelled');
          return { forward: false, status: 502, code: 'upstream_unavailable', context: { ...context, route: null } };
        }
        return {
          forward: true,
          upgrade: true,
          route,
          ...(retryableMethod(head.method!, this.config.retryable) ? { replayBodyBytes: d.routing!.settings.retry.bufferBytes } : {}),
          strip: STRIP,
          add: span ? traceLines(span) : '',
          ...(absolute ? { target: absolute.path } : {}),
          context,
        };
      },
      done: (r: ExchangeRecord, ctx: unknown) => {
        const c = ctx as ProxyContext;
        c.route?.end(exchangeOutcome(r.status, r.error, r.responseFlags, undefined, r.requestComplete, r.heldUpstream === true));
        this.exchanges.record({ direction: 'outbound', protocol: 'http', listener: this.config.name, requestId: c.requestId, peer: c.route?.logged.endpoint.spiffeId ?? null, method: r.method, path: c.path, status: r.status, bytesIn: r.bytesIn, bytesOut: r.bytesOut, durationMs: r.endMs - r.startMs, endMs: r.endMs, upstream: c.route?.address, resumed: r.upstreamResumed ?? false, error: r.error, responseFlags: r.responseFlags, span: c.span });
      },
    };
  }

  /** A CONNECT tunnel: to an endpoint of the named service, bytes both ways once it is open. */
  #connect(socket: net.Socket, authority: string, early: Buffer | null): void {
    const d = this.d;
    const start = d.nowMs();
    const requestId = d.requestId();
    socket.pause();
    const service = serviceOfHost(authority, this.#known);
    const deps = service === null ? undefined : this.#tunnels.route(service);
    const route = deps ? ExchangeRoute.open(deps) : null;
    const recorded = this.sessions.tunnel(socket);
    const log = (status: number, bytesIn: number, bytesOut: number, resumed: boolean, error?: string) => {
      this.exchanges.record({ direction: 'outbound', protocol: 'tcp', listener: this.config.name, requestId, peer: route?.logged.endpoint.spiffeId ?? null, method: 'CONNECT', path: authority, status, bytesIn, bytesOut, durationMs: d.nowMs() - start, upstream: route?.address, resumed, ...(error ? { error } : {}), ...this.sessions.drainCuts.flag(socket) });
      recorded();
    };
    // Counted in tessera_requests_total (503 and the code), as the plain-HTTP form is; not a broken limit.
    const refuse = (status: number, code: 'not_ready' | 'unknown_service' | 'no_endpoints' | 'upstream_unavailable') => {
      socket.end(refusal(status, code));
      log(status, 0, 0, false, code);
    };
    const why = !d.identity.current ? 'not_ready' : !deps ? 'unknown_service' : !route ? 'no_endpoints' : null;
    if (why || !route) {
      refuse(503, why ?? 'no_endpoints');
      return;
    }
    dialRoute(route, this.#mtls, (err, up, resumed, verdict) => {
      if (err || !up) {
        refuse(502, 'upstream_unavailable');
        return;
      }
      if (socket.destroyed) {
        // The client left while the upstream was being had: counted as its reset (499), as once the tunnel is up.
        route.end('cancelled');
        closeUnused(up);
        return log(tunnelStatus('downstream_reset'), 0, 0, resumed ?? false, 'downstream_reset');
      }
      socket.write(ESTABLISHED);
      if (early) up.write(early);
      // Past the 200, a refusal of this proxy's certificate can only reach the client as a reset (refusalGuard).
      const refused = refusalGuard(verdict, socket);
      socket.resume();
      relay(socket, up, d.limits.streamIdleTimeoutMs, (r) => {
        const error = refused(r.error);
        route.end(tunnelOutcome(error));
        log(tunnelStatus(error), r.bytesIn, r.bytesOut, resumed ?? false, error);
      });
    });
  }
}
