// The edge listener: TLS for outside clients (SNI certificates, optional client certificates), HTTP/1.1 on the
// lean forwarder and HTTP/2 on node:http2 by ALPN, routing by host and path to mesh upstreams re-originated over
// mTLS with secure naming (HTTP/1.1, HTTP/2 or gRPC per route), forwarding headers from the real connection,
// optional HSTS, the same metrics, access log, tracing and drain as sidecars.

import * as http2 from 'node:http2';
import type * as net from 'node:net';
import * as tls from 'node:tls';
import { isTesseraError } from '../../../common/errors.js';
import { refuseRenegotiation } from '../../../shared-io/no-renegotiation.js';
import type { EdgeConfig } from '../config/edge-config.js';
import { guardH2Server } from '../h2/h2-error-guard.js';
import { h2ServerOptions, watchH2Session } from '../listeners/h2-server-limits.js';
import { keepAccepting } from '../listeners/keep-accepting.js';
import { listenOn } from '../listeners/listen.js';
import type { Listener } from '../listeners/listener.js';
import type { ListenerDeps } from '../listeners/listener-deps.js';
import { SessionSet } from '../listeners/session-set.js';
import { AcceptTimes } from '../telemetry/accept-times.js';
import { ExchangeRecorder } from '../telemetry/exchange-recorder.js';
import { classifyTlsError } from '../telemetry/handshake-reason.js';
import { clientRefusal } from './client-refusal.js';
import { EdgeCertificates } from './edge-certificates.js';
import { EdgeGate } from './edge-gate.js';
import { onEdgeStream } from './edge-h2.js';
import { edgeHttp1Session } from './edge-http1.js';

export class EdgeListener implements Listener {
  readonly kind = 'edge' as const;
  readonly config: EdgeConfig;
  readonly #d: ListenerDeps;
  /** The TLS server; a connection that negotiated h2 goes to #h2, any other to the lean HTTP/1.1 forwarder. */
  readonly #server: tls.Server;
  /** Never listens: serves the HTTP/2 connections #server hands it. */
  readonly #h2: http2.Http2Server;
  readonly #certs: EdgeCertificates;
  readonly #gate: EdgeGate;
  /** HTTP/1.1 sessions and HTTP/2 sessions, with their header/idle/request deadlines. */
  readonly #sessions: SessionSet;
  /** The TLS socket being handed to #h2, whose session is created (and announced) synchronously. */
  #handing: tls.TLSSocket | undefined;
  #port = 0;

  constructor(config: EdgeConfig, deps: ListenerDeps) {
    this.config = config;
    this.#d = deps;
    this.#certs = new EdgeCertificates({
      defaultCert: { serverNames: ['*'], certFile: config.certFile, keyFile: config.keyFile },
      sni: config.certificates,
      ...(config.clientCa ? { clientCaFile: config.clientCa } : {}),
      tlsMinVersion: config.tlsMinVersion,
      // Coded and counted as the other hot-reloaded inputs are (audit 61d F5: a refusal was an uncoded line only).
      onReload: (result, error) => {
        deps.metrics.edgeCertificateReload(config.name, result);
        if (result === 'success') deps.log.info({ listener: config.name, result }, 'edge certificates reload');
        else deps.log.warn({ listener: config.name, result, ...(isTesseraError(error) ? { code: error.code } : {}), err: error instanceof Error ? error.message : String(error) }, 'edge certificates reload');
      },
      ...deps.edgeCertificates?.(config.name),
    });
    this.#gate = new EdgeGate(config, deps, this.#certs);
    const recorder = new ExchangeRecorder(deps.metrics, deps.accessLog);
    this.#sessions = new SessionSet(deps, () => this.#gate.sweep());
    const perRequest = { d: deps, gate: this.#gate, recorder, listener: config.name, drainCuts: this.#sessions.drainCuts };
    const required = config.clientCa !== undefined && config.clientCert === 'required';
    this.#server = tls.createServer({
      ...this.#certs.defaultOptions,
      SNICallback: this.#certs.sniCallback,
      ALPNProtocols: ['h2', 'http/1.1'],
      requestCert: config.clientCa !== undefined,
      // Never OpenSSL's own refusal: it would leave only "socket hang up" to count. clientRefusal decides, after
      // the handshake, with the inbound's reasons (client-refusal.ts).
      rejectUnauthorized: false,
      handshakeTimeout: deps.limits.handshakeTimeoutMs,
    });
    this.#h2 = http2.createServer(h2ServerOptions(deps.limits, 32));
    // Every session and stream an 'error' listener first: a client's reset or protocol error never exits the process.
    guardH2Server(this.#h2, deps.timers);
    keepAccepting(this.#server, deps.nowMs, (err, failures) => deps.log.warn({ listener: config.name, err, failures }, 'edge accept failed'));
    this.#h2.on('session', (session) => {
      // The session's socket is a guarded view of the TLS socket being handed over: the client's chain can be
      // read only once per connection (tls/sent-chain.ts), so the view shares what the gate read of the socket.
      if (this.#handing) this.#gate.sameConnection(session.socket, this.#handing);
      // Past its premature-reset budget a client is cut: each has its own connection (h2-reset-budget.ts).
      watchH2Session(this.#sessions, session, deps.limits, deps.nowMs, (code) => deps.metrics.rejected('edge', code), 'cut');
    });
    this.#h2.on('stream', (stream, headers) => onEdgeStream(perRequest, stream, headers));
    // No node:http2 session timeout: it would destroy a session (and its quiet gRPC streams) after idleTimeout
    // without a frame. A session's idleness with no open stream is H2SessionWatch's (watchH2Session).
    this.#server.maxConnections = deps.limits.maxConnections;
    const accepts = new AcceptTimes(this.#server, deps.nowMs);
    this.#server.on('secureConnection', (socket: tls.TLSSocket) => {
      const handshakeSeconds = accepts.secondsSince(socket, deps.nowMs());
      refuseRenegotiation(socket, () => deps.metrics.handshake('edge', false, 'protocol', false));
      const refused = clientRefusal(this.#gate, socket, required);
      if (refused) {
        deps.metrics.handshake('edge', false, refused.reason, socket.isSessionReused());
        deps.log[refused.reason === 'revoked' ? 'warn' : 'info']({ listener: config.name, reason: refused.reason, detail: refused.detail }, 'edge client refused');
        socket.destroy();
        return;
      }
      deps.metrics.handshake('edge', true, 'none', socket.isSessionReused(), handshakeSeconds);
      deps.metrics.connectionOpened('edge');
      socket.once('close', () => deps.metrics.connectionClosed('edge'));
      if (socket.alpnProtocol === 'h2') {
        this.#handing = socket;
        try {
          this.#h2.emit('connection', socket);
        } finally {
          this.#handing = undefined;
        }
        return;
      }
      socket.setNoDelay(true);
      this.#sessions.add(socket, edgeHttp1Session(socket, perRequest));
    });
    this.#server.on('tlsClientError', (err, socket) => {
      // With a listener attached Node no longer destroys the socket: a handshake timeout would leave it open.
      socket.destroy();
      deps.metrics.handshake('edge', false, classifyTlsError(err), false);
    });
  }

  async start(bound?: net.Server): Promise<{ host: string; port: number }> {
    this.#port = await listenOn(this.#server, bound ?? this.config.listen, () => this.#d.metrics.rejected('edge', 'too_many_connections'));
    this.#gate.port = this.#port;
    this.#sessions.start();
    this.#certs.start((opts) => this.#server.setSecureContext(opts));
    return { host: this.config.listen.host, port: this.#port };
  }

  get port(): number {
    return this.#port;
  }

  idle(): Promise<void> {
    return this.#sessions.idle();
  }

  get openConnections(): number {
    return this.#sessions.size;
  }

  /** Stop accepting; idle HTTP/1.1 connections close now, busy ones after their exchange; HTTP/2 gets GOAWAY. */
  drain(): void {
    this.#server.close();
    this.#sessions.drain();
  }

  close(): Promise<void> {
    this.#certs.stop();
    const closed = this.#sessions.destroyAll();
    this.#gate.close();
    return closed;
  }
}
