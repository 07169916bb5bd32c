// The control plane's SPIFFE bundle endpoint: HTTPS GET answers the trust domain's bundle document (the same text
// as <dataDir>/bundle.spiffe.json). Profile https_spiffe presents the control plane's own SVID (swapped when it
// renews or the CA changes); https_web presents a configured server certificate. Nothing but GET is served.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import { type Clock, systemClock } from '../../../common/clock.js';
import { describeError } from '../../../common/errors.js';
import { TLS_CIPHERS } from '../../../common/tls-ciphers.js';
import { guardListenerConnections } from '../../../shared-io/listener-connections.js';
import { refuseRenegotiation } from '../../../shared-io/no-renegotiation.js';
import type { ServerIdentity } from '../api/grpc-server.js';
import type { ControlPlaneLogger } from '../logger.js';

export interface BundleEndpointOptions {
  readonly listen: string;
  /** The bundle document's text, read per request so a rotation is served at once. */
  readonly document: () => string;
  /** https_spiffe: the control plane's SVID; https_web: the configured certificate and key. */
  readonly identity: ServerIdentity | { readonly certChainPem: string; readonly keyPem: string };
  readonly log: ControlPlaneLogger;
  /** A TLS handshake not finished by then is cut (`limits.handshakeTimeout`, as on the gRPC port). */
  readonly handshakeTimeoutMs: number;
  /** Open connections at most (`limits.maxConnections`): at the cap another makes room (connection-table.ts). */
  readonly maxConnections: number;
  /** Time for the connection rules (shared-io/listener-connections.ts); the system clock by default. */
  readonly clock?: Clock;
  /** A connection refused before HTTP: a handshake that failed or timed out, or one over maxConnections. */
  readonly onRefused?: (reason: 'timeout' | 'protocol' | 'max_connections') => void;
}

/** Request and header deadlines: a bundle request is one small GET. */
const REQUEST_TIMEOUT_MS = 10_000;

const contextOf = (i: BundleEndpointOptions['identity']): SecureContextOptions => ({ cert: i.certChainPem, key: i.keyPem, minVersion: 'TLSv1.2', ciphers: TLS_CIPHERS });

export class BundleEndpoint {
  readonly #server: Server;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(o: BundleEndpointOptions): Promise<BundleEndpoint> {
    // This listener is the one other organisations reach: every connection is bounded in time and number, and
    // node:http checks its request deadlines each second (by default every 30 s, so 10 s meant up to 40).
    const options = { ...contextOf(o.identity), handshakeTimeout: o.handshakeTimeoutMs, requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS, connectionsCheckingInterval: 1_000, keepAliveTimeout: 5_000 };
    const server = createServer(options, (req, res) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      let body: string;
      try {
        body = o.document();
      } catch (e) {
        o.log.error({ err: describeError(e) }, 'bundle endpoint: the bundle document is unreadable');
        res.writeHead(503).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    // At the cap another connection makes room, in connection-table.ts's order, rather than the newcomer being
    // refused: whoever connects first cannot hold every slot. A pipelining client is cut.
    const guard = guardListenerConnections(server, { max: o.maxConnections, clock: o.clock ?? systemClock, tls: true, onRefused: (r) => o.onRefused?.(r === 'pipelined' ? 'protocol' : 'max_connections') });
    // As on the gRPC port: no TLS 1.2 renegotiation (a full handshake's CPU for a few bytes from the client).
    server.on('secureConnection', (socket: TLSSocket) => refuseRenegotiation(socket, () => o.onRefused?.('protocol')));
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket) => {
      // One closed to make room in its handshake is counted already (audit 61e F2: max_connections and protocol).
      if (!guard.closedForRoom(socket)) o.onRefused?.(err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT' ? 'timeout' : 'protocol');
      socket.destroy();
    });
    const i = o.listen.lastIndexOf(':');
    const host = o.listen.slice(0, i).replace(/^\[|\]$/g, '');
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(Number(o.listen.slice(i + 1)), host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new BundleEndpoint(server);
  }

  get address(): string {
    const a = this.#server.address() as AddressInfo;
    return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  }

  /** New server credentials (https_spiffe: the renewed SVID) for the next handshakes. */
  updateIdentity(identity: BundleEndpointOptions['identity']): void {
    this.#server.setSecureContext(contextOf(identity));
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
