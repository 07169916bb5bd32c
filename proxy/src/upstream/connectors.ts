// Opening upstream connections: mTLS to a peer proxy with secure naming (the server must present exactly the
// configured SPIFFE ID, not a banned one, and the connection is closed when a later ban names it; Node's hostname
// check is replaced by the SVID check), or plaintext to the local app.
import * as net from 'node:net';
import * as tls from 'node:tls';
import { TesseraError } from '../../../common/errors.js';
import type { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import type { IdentityStore } from '../identity/identity-store.js';
import type { ProxyMetrics } from '../telemetry/metrics.js';
import { classifyTlsError } from '../telemetry/handshake-reason.js';
import type { DenyListHolder } from '../tls/deny-list-holder.js';
import { type DenyCandidate, deniedBy } from '../tls/deny-list.js';
import type { PeerVerifier, VerifiedPeer } from '../tls/peer-verify.js';
import type { ClientContexts } from '../tls/tls-contexts.js';
import type { Connector } from './connection-pool.js';

export interface MtlsTarget {
  readonly host: string;
  readonly port: number;
  readonly expectedId: SpiffeId;
  readonly alpn: readonly string[];
  /** TCP relays: keep the write side open after the upstream finishes sending (half-close). */
  readonly allowHalfOpen?: boolean;
}

export interface MtlsDeps {
  readonly identity: IdentityStore;
  readonly contexts: ClientContexts;
  readonly verifier: PeerVerifier;
  /** Operator bans: an upstream whose SPIFFE ID or serial is listed is refused (reason revoked). */
  readonly denyList: DenyListHolder;
  readonly metrics: ProxyMetrics;
  readonly nowMs: () => number;
  readonly handshakeTimeoutMs: number;
  /** Metric label: outbound or edge. */
  readonly direction: string;
}

/**
 * The last session ticket to one upstream, and the SVID generation it was made with: a resumed session presents
 * the client certificate of its original handshake, so a ticket from before our own rotation would present an
 * old (soon expired) SVID. Tickets are used only within the generation that got them.
 */
export interface SessionMemory {
  ticket?: Buffer;
  generation?: number;
}

/** Read buffer of a pooled upstream connection. */
const READ_CHUNK = 16 * 1024;
/** Reads smaller than this are copied out (into Node's shared pool); larger ones take the read buffer with them. */
const COPY_BELOW = 4 * 1024;

/**
 * Reads of a pooled upstream connection (Node's `onread`): each read lands in a buffer of ours and is emitted as
 * 'data' at once, without the Readable machinery (a push and a nextTick per read, several per cent of a proxy's
 * CPU per request). No read buffer is ever shared: a small read is copied out, a large one keeps its buffer and
 * the next read gets a new one. Pause and resume still stop and restart reading. Only for the pool, whose one
 * 'data' listener is attached as soon as the connection is ready; bytes before that are a broken upstream.
 */
export function directReads(): { readonly onread: net.OnReadOpts; bind(socket: net.Socket): void } {
  let socket: net.Socket | null = null;
  let buf = Buffer.allocUnsafe(READ_CHUNK);
  // Held with the buffer: `.buffer` is a call into V8's C++ on every read (~0.5 % of a side's CPU under load).
  let memory = buf.buffer;
  let handedOff = false;
  return {
    onread: {
      buffer: () => {
        if (handedOff) {
          buf = Buffer.allocUnsafe(READ_CHUNK);
          memory = buf.buffer;
          handedOff = false;
        }
        return buf;
      },
      // Node reads into `buf` (the buffer() above), so `b` is a view of `memory`.
      callback: (n: number, b: Uint8Array): boolean => {
        const s = socket!;
        if (s.listenerCount('data') === 0) {
          s.destroy(new Error('upstream sent bytes before the connection was ready'));
          return false;
        }
        const chunk = Buffer.from(memory, b.byteOffset, n);
        if (n < COPY_BELOW) s.emit('data', Buffer.from(chunk));
        else {
          handedOff = true;
          s.emit('data', chunk);
        }
        return true;
      },
    },
    bind(s: net.Socket): void {
      socket = s;
    },
  };
}

/**
 * Dials `target` and completes an mTLS handshake; remembers the last session ticket for resumption. `reads`: the
 * socket's reads go through directReads() (pooled HTTP/1.1 connections only).
 */
export function mtlsConnect(target: MtlsTarget, deps: MtlsDeps, session: SessionMemory, done: (err: Error | null, socket?: tls.TLSSocket, resumed?: boolean) => void, reads?: ReturnType<typeof directReads>): void {
  const snapshot = deps.identity.current;
  if (!snapshot) {
    done(new Error('no SVID loaded yet'));
    return;
  }
  const started = deps.nowMs();
  let settled = false;
  let peer: VerifiedPeer | undefined;
  // allowHalfOpen is honoured by tls.connect at runtime but missing from its option types.
  const options: tls.ConnectionOptions & { allowHalfOpen: boolean } = {
    allowHalfOpen: target.allowHalfOpen ?? false,
    host: target.host,
    port: target.port,
    secureContext: deps.contexts.get(snapshot),
    ...(session.ticket && session.generation === snapshot.generation ? { session: session.ticket } : {}),
    ALPNProtocols: [...target.alpn],
    ...(reads ? { onread: reads.onread } : {}),
    rejectUnauthorized: true,
    checkServerIdentity: (_host, cert) => {
      const r = deps.verifier.verify(cert, snapshot, deps.nowMs(), target.expectedId);
      // The SVID failure's code names the fault; classifyTlsError maps it to the handshake reason.
      if (!r.ok) return new TesseraError(r.code, `upstream ${target.host}:${target.port} is not ${target.expectedId}: ${r.reason}`);
      peer = r;
      return undefined;
    },
  };
  const socket = tls.connect(options);
  reads?.bind(socket);
  const fail = (err: Error) => {
    if (settled) return;
    settled = true;
    socket.destroy();
    deps.metrics.handshake(deps.direction, false, classifyTlsError(err), false);
    done(err);
  };
  socket.setTimeout(deps.handshakeTimeoutMs, () => fail(Object.assign(new Error('TLS handshake timed out'), { code: 'ERR_TLS_HANDSHAKE_TIMEOUT' })));
  socket.once('error', fail);
  socket.on('session', (ticket: Buffer) => {
    session.ticket = ticket;
    session.generation = snapshot.generation;
  });
  socket.once('secureConnect', () => {
    if (settled) return;
    // A resumed session skips checkServerIdentity: its ID was checked in the full handshake the ticket came from,
    // but the deny-list may have changed since, so the leaf it carries is looked up here in both cases.
    const served: DenyCandidate = peer ?? { idText: target.expectedId.toString(), serial: socket.getPeerCertificate()?.serialNumber ?? '' };
    const banned = deniedBy(deps.denyList.current, served);
    if (banned) {
      const code = banned === 'serial' ? 'TESSERA_ERR_REVOCATION_SERIAL_BANNED' : 'TESSERA_ERR_REVOCATION_ID_BANNED';
      fail(new TesseraError(code, `upstream ${target.host}:${target.port} (${served.idText}) is revoked: its ${banned} is banned`));
      return;
    }
    settled = true;
    socket.setTimeout(0);
    socket.removeListener('error', fail);
    socket.setNoDelay(true);
    const resumed = socket.isSessionReused();
    deps.metrics.handshake(deps.direction, true, 'none', resumed, (deps.nowMs() - started) / 1000);
    deps.metrics.upstreamConnectionOpened(deps.direction);
    closeWhenBanned(socket, served, deps);
    done(null, socket, resumed);
  });
}

/** A pooled connection to an upstream that a later deny-list bans is closed (its owner sees it go). */
function closeWhenBanned(socket: tls.TLSSocket, peer: DenyCandidate, deps: MtlsDeps): void {
  const off = deps.denyList.subscribe((list) => {
    if (!deniedBy(list, peer)) return;
    off();
    deps.metrics.connectionsRevoked(deps.direction, 1);
    socket.destroy();
  });
  socket.once('close', off);
}

export function mtlsConnector(target: MtlsTarget, deps: MtlsDeps): Connector {
  const session: SessionMemory = {};
  return (done) => mtlsConnect(target, deps, session, done, directReads());
}

/** Plaintext to the local app (loopback). */
export function plainConnector(host: string, port: number, timeoutMs: number): Connector {
  return (done) => {
    let settled = false;
    const reads = directReads();
    const socket = net.connect({ host, port, noDelay: true, onread: reads.onread });
    reads.bind(socket);
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      done(err);
    };
    socket.setTimeout(timeoutMs, () => fail(new Error(`connect to ${host}:${port} timed out`)));
    socket.once('error', fail);
    socket.once('connect', () => {
      if (settled) return;
      settled = true;
      socket.setTimeout(0);
      socket.removeListener('error', fail);
      done(null, socket, false);
    });
  };
}
