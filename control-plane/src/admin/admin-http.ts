// The admin listener (loopback by default): /healthz (process alive), /ready (CA loaded, gRPC serving, own SVID
// valid), /metrics (Prometheus text), /certs (own SVID and bundle, public data only), /config (the effective
// config; it holds paths and settings, no secret), /endpoints (the service registry), and the fleet dashboard
// (/dashboard, /api/) when one is mounted. Nothing here changes state; operator commands use the Unix socket. With
// no authentication of its own, it answers only requests addressed to an IP or localhost, not from other sites'
// pages (shared-io/local-request.ts).
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { Registry } from 'prom-client';
import { parseAddress } from '../../../common/config/validate-yaml.js';
import { type Clock, systemClock } from '../../../common/clock.js';
import { TesseraError } from '../../../common/errors.js';
import { withoutUrlCredentials } from '../../../common/text/url-credentials.js';
import { guardListenerConnections } from '../../../shared-io/listener-connections.js';
import { adminRequestRefusal } from '../../../shared-io/local-request.js';

export interface AdminHttpOptions {
  readonly listen: string;
  readonly registry: Registry;
  /** null = ready; otherwise the reason it is not. */
  readonly notReadyReason: () => string | undefined;
  /** What /certs answers as JSON: public certificate facts only (never a key). */
  readonly certs: () => unknown;
  /** The effective config as /config answers it. */
  readonly config: () => unknown;
  /** The service registry as /endpoints answers it (service → endpoints); absent: 404. */
  readonly endpoints?: () => unknown;
  /** Time for the connection rules (listener-connections.ts); the system clock by default. */
  readonly clock?: Clock;
  /** More read-only routes (the dashboard): true when it answered the request. */
  readonly routes?: (req: IncomingMessage, res: ServerResponse) => boolean;
}

/** Open connections at most: scrapes, probes and a few dashboards. */
export const ADMIN_MAX_CONNECTIONS = 256;

export class AdminHttp {
  readonly #o: AdminHttpOptions;
  #server: Server | undefined;
  #port = 0;

  constructor(opts: AdminHttpOptions) {
    this.#o = opts;
  }

  get address(): string {
    const a = parseAddress(this.#o.listen)!;
    return `${a.host.includes(':') ? `[${a.host}]` : a.host}:${this.#port}`;
  }

  async start(): Promise<void> {
    const addr = parseAddress(this.#o.listen);
    if (!addr) throw new TesseraError('TESSERA_ERR_CP_LISTEN_FAILED', `bad adminListen address ${this.#o.listen}`);
    const server = createServer({ connectionsCheckingInterval: 1_000 }, (req, res) => {
      if (req.socket.destroyed) return; // cut for pipelining
      const path = (req.url ?? '/').split('?')[0];
      const send = (status: number, type: string, body: string) => {
        res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
        res.end(body);
      };
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n');
      // Every route, not only the dashboard: /endpoints and /config read the fleet as well (DNS rebinding).
      const refusal = adminRequestRefusal(req);
      if (refusal !== null) return send(403, 'text/plain', `${refusal}\n`);
      if (this.#o.routes?.(req, res)) return;
      if (path === '/healthz') return send(200, 'text/plain', 'ok\n');
      if (path === '/ready') {
        const reason = this.#o.notReadyReason();
        return reason === undefined ? send(200, 'text/plain', 'ready\n') : send(503, 'text/plain', `not ready: ${reason}\n`);
      }
      if (path === '/certs') return send(200, 'application/json', `${JSON.stringify(this.#o.certs(), null, 2)}\n`);
      // A URL's user:password (a federated bundle endpoint's, an API server's) is not shown.
      if (path === '/config') return send(200, 'application/json', `${JSON.stringify(this.#o.config(), (_k, v: unknown) => (typeof v === 'string' ? withoutUrlCredentials(v) : v), 2)}\n`);
      if (path === '/endpoints' && this.#o.endpoints) return send(200, 'application/json', `${JSON.stringify(this.#o.endpoints(), null, 2)}\n`);
      if (path === '/metrics') {
        this.#o.registry.metrics().then(
          (text) => send(200, this.#o.registry.contentType, text),
          () => send(500, 'text/plain', 'metrics failed\n'),
        );
        return;
      }
      send(404, 'text/plain', 'not found\n');
    });
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    // Bounded like the proxy's admin listener: idle sockets cannot take the process's file descriptors (which the
    // gRPC port and admin.sock share) nor the slots (another makes room in connection-table.ts's order, a pipelining
    // client is cut: shared-io/listener-connections.ts), and the deadlines above are checked each second, not every 30 s.
    guardListenerConnections(server, { max: ADMIN_MAX_CONNECTIONS, clock: this.#o.clock ?? systemClock });
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => reject(new TesseraError('TESSERA_ERR_CP_LISTEN_FAILED', `${this.#o.listen}: ${e.code ?? e.message}`)));
      server.listen(addr.port, addr.host, () => resolve());
    });
    this.#server = server;
    this.#port = (server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    const s = this.#server;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}
