// Opening upstream connections: mTLS to a peer proxy with secure naming (the server must present exactly the
// configured SPIFFE ID, not a banned one, and the connection is closed when a later ban names it; Node's hostname
// check is replaced by the SVID check), or plaintext to the local app.
import * as net from 'node:net';
import * as tls from 'node:tls';
import { TesseraError } from '../../../common/errors.js';
import type { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import type { IdentityStore } from '../identity/identity-store.js';
import { resetSocket } from '../listeners/socket-reset.js';
import { classifyTlsError } from '../telemetry/handshake-reason.js';
import type { ProxyMetrics } from '../telemetry/metrics.js';
import { type DenyCandidate, deniedBy } from '../tls/deny-list.js';
import type { DenyListHolder } from '../tls/deny-list-holder.js';
import type { PeerVerifier, VerifiedPeer } from '../tls/peer-verify.js';
import type { ClientContexts } from '../tls/tls-contexts.js';
import type { Connector } from './connection-pool.js';
import { awaitPeerVerdict, type FirstRead, type Refusal, type VerdictWatch } from './peer-verdict.js';

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
  /** A failed handshake (or dial), with its metric reason: logged, within a budget (upstream-refusal-log.ts). */
  readonly onFailed?: (upstream: string, expected: string, reason: string, err: Error) => void;
}

/**
 * The last session ticket to one upstream, the SVID generation it was made with, and the NotAfter of the upstream
 * leaf it resumes. A resumed session presents the client certificate of its original handshake, so a ticket from
 * before our own rotation would present an old (soon expired) SVID: tickets are used only within the generation
 * that got them. It also brings back the upstream's leaf without checkServerIdentity, so a ticket is not offered
 * once that leaf has expired: the next connection is a full handshake, judged afresh (TLS 1.3 lets a server keep
 * handing out tickets for 7 days, and an expired SVID must not stay trusted through them).
 */
export interface SessionMemory {
  ticket?: Buffer;
  generation?: number;
  /** The upstream leaf the ticket resumes, as verified in the full handshake the ticket came from. */
  peer?: UpstreamLeaf;
}

/**
 * What a resumed session is judged by: the upstream leaf as verified in the full handshake the ticket came from.
 * Node exposes no peer certificate on a resumed client session (OpenSSL keeps the leaf in the session, but Node
 * reads the peer chain, which resumption does not restore), so it is kept with the ticket: these three fields
 * only, not the whole VerifiedPeer.
 */
export type UpstreamLeaf = Pick<VerifiedPeer, 'notBeforeMs' | 'notAfterMs' | 'serial'>;

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
export function directReads(): { readonly onread: net.OnReadOpts; bind(socket: net.Socket): void } & FirstRead {
  let socket: net.Socket | null = null;
  // Told of the first read (the TLS 1.3 handshake verdict waits for the peer to speak, peer-verdict.ts).
  let firstRead: (() => void) | undefined;
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
        if (firstRead !== undefined) firstRead();
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
    onFirstRead(fn: (() => void) | undefined): void {
      firstRead = fn;
    },
  };
}

/**
 * What mtlsConnect hands over: the connection, whether it resumed, and `retired`, true once the upstream's leaf or
 * this proxy's own, the two the connection was authenticated with, has expired by our clock. It fits the keep-alive
 * pool's Connector, which then drops such a connection at its next lease or sweep, as HTTP/2 and multiplexed
 * sessions take no new stream then: a kept-alive connection must not outlive the certificates it was trusted for
 * (an own SVID that expired unrenewed would otherwise go on sending requests the upstream would refuse to a new
 * handshake). `verdict`: the upstream's verdict on this proxy's certificate (peer-verdict.ts), for a tunnel to consult.
 */
export type MtlsDone = (err: Error | null, socket?: tls.TLSSocket, resumed?: boolean, retired?: () => boolean, verdict?: VerdictWatch) => void;

/** The ticket to offer now: of this SVID generation, for an upstream leaf not yet expired by our clock. */
function resumableTicket(session: SessionMemory, generation: number, nowMs: number): { readonly ticket: Buffer; readonly peer: UpstreamLeaf } | undefined {
  if (!session.ticket || session.generation !== generation) return undefined;
  if (!session.peer || nowMs > session.peer.notAfterMs) {
    session.ticket = undefined;
    return undefined;
  }
  return { ticket: session.ticket, peer: session.peer };
}

/** Why a resumed session's upstream leaf may not be used now (what checkPath says of it on a full handshake), or null. */
function lapsedLeaf(leaf: UpstreamLeaf, nowMs: number): { code: 'TESSERA_ERR_SVID_EXPIRED' | 'TESSERA_ERR_SVID_NOT_YET_VALID'; detail: string } | null {
  if (nowMs < leaf.notBeforeMs) return { code: 'TESSERA_ERR_SVID_NOT_YET_VALID', detail: `its certificate chain is valid from ${new Date(leaf.notBeforeMs).toISOString()}` };
  if (nowMs > leaf.notAfterMs) return { code: 'TESSERA_ERR_SVID_EXPIRED', detail: `its certificate chain expired ${new Date(leaf.notAfterMs).toISOString()}` };
  return null;
}

/**
 * Dials `target` and completes an mTLS handshake; remembers the last session ticket for resumption. `reads`: the
 * socket's reads go through directReads() (pooled HTTP/1.1 connections only).
 */
export function mtlsConnect(target: MtlsTarget, deps: MtlsDeps, session: SessionMemory, done: MtlsDone, reads?: ReturnType<typeof directReads>): void {
  const snapshot = deps.identity.current;
  if (!snapshot) {
    done(new Error('no SVID loaded yet'));
    return;
  }
  const started = deps.nowMs();
  let settled = false;
  let peer: VerifiedPeer | undefined;
  const offered = resumableTicket(session, snapshot.generation, started);
  // Half-open only once the handshake is done (below): before it, a peer's FIN must end the attempt at once, not
  // read as a half-close that waits for the handshake timeout.
  const options: tls.ConnectionOptions = {
    host: target.host,
    port: target.port,
    secureContext: deps.contexts.get(snapshot),
    ...(offered ? { session: offered.ticket } : {}),
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
    // The TCP connect failed (refused, unreachable: Node clears `connecting` before it reports the error) or the
    // timeout hit it: no TLS handshake began, so it is logged as a connect failure and not counted among handshakes.
    const connecting = socket.connecting || (err as NodeJS.ErrnoException).syscall === 'connect';
    socket.destroy();
    if (connecting) deps.onFailed?.(`${target.host}:${target.port}`, target.expectedId.toString(), 'connect_failed', err);
    else {
      const reason = classifyTlsError(err);
      deps.metrics.handshake(deps.direction, false, reason, false);
      deps.onFailed?.(`${target.host}:${target.port}`, target.expectedId.toString(), reason, err);
    }
    done(err);
  };
  socket.setTimeout(deps.handshakeTimeoutMs, () => fail(Object.assign(new Error('TLS handshake timed out'), { code: 'ERR_TLS_HANDSHAKE_TIMEOUT' })));
  socket.once('error', fail);
  // The upstream leaf of this connection: the one checkServerIdentity verifies, or resumed, the offered ticket's.
  const leafNow = (): UpstreamLeaf | undefined => (peer ? { notBeforeMs: peer.notBeforeMs, notAfterMs: peer.notAfterMs, serial: peer.serial } : socket.isSessionReused() ? offered?.peer : undefined);
  socket.on('session', (ticket: Buffer) => {
    // Node emits tickets only once the connection verified.
    const leaf = leafNow();
    if (!leaf || socket.destroyed) return;
    session.ticket = ticket;
    session.generation = snapshot.generation;
    session.peer = leaf;
  });
  socket.once('secureConnect', () => {
    if (settled) return;
    // A resumed session skips checkServerIdentity: its ID was checked in the full handshake the ticket came from,
    // but time has passed and the deny-list may have changed since. So the leaf it carries must still be within
    // its validity by our clock (as the inbound side re-checks a resumed peer), failing exactly as a full
    // handshake with that leaf would, and it is looked up in the deny-list (ID and serial) in both cases.
    const leaf = leafNow();
    const lapsed = peer ? null : leaf ? lapsedLeaf(leaf, deps.nowMs()) : { code: 'TESSERA_ERR_SVID_EMPTY_CHAIN' as const, detail: 'no verified certificate is known for it' };
    if (lapsed) {
      // Whatever ticket is held now goes too: at worst a newer one costs one full handshake.
      session.ticket = undefined;
      fail(new TesseraError(lapsed.code, `upstream ${target.host}:${target.port} (${target.expectedId}) resumed a session, but ${lapsed.detail}`));
      return;
    }
    const served: DenyCandidate = peer ?? { idText: target.expectedId.toString(), serial: leaf?.serial ?? '' };
    const banned = deniedBy(deps.denyList.current, served);
    if (banned) {
      const code = banned === 'serial' ? 'TESSERA_ERR_REVOCATION_SERIAL_BANNED' : 'TESSERA_ERR_REVOCATION_ID_BANNED';
      fail(new TesseraError(code, `upstream ${target.host}:${target.port} (${served.idText}) is revoked: its ${banned} is banned`));
      return;
    }
    settled = true;
    socket.setTimeout(0);
    socket.removeListener('error', fail);
    if (target.allowHalfOpen) socket.allowHalfOpen = true;
    socket.setNoDelay(true);
    const resumed = socket.isSessionReused();
    const seconds = (deps.nowMs() - started) / 1000;
    // Handed out now; counted once the upstream has judged this proxy's certificate (TLS 1.3: after this event).
    let judged: Refusal | null | undefined;
    let told: ((refusal: Refusal | null) => void) | undefined;
    // Registered before the owner's listeners, so a watcher hears of a refusal before the owner sees the close.
    awaitPeerVerdict(socket, deps.nowMs, deps.handshakeTimeoutMs, reads, (refusal) => {
      judged = refusal;
      told?.(refusal);
      if (refusal === null) {
        deps.metrics.handshake(deps.direction, true, 'none', resumed, seconds);
        deps.metrics.upstreamConnectionOpened(deps.direction);
        return;
      }
      // A resumed session it refused was made with this SVID generation's ticket: the next one is a full handshake.
      if (resumed) session.ticket = undefined;
      deps.metrics.handshake(deps.direction, false, refusal.reason, resumed);
      deps.onFailed?.(`${target.host}:${target.port}`, target.expectedId.toString(), refusal.reason, refusal.err);
    });
    closeWhenBanned(socket, served, deps);
    const notAfterMs = Math.min(leaf?.notAfterMs ?? Number.NEGATIVE_INFINITY, snapshot.notAfterMs);
    const verdict: VerdictWatch = (fn) => {
      if (judged === undefined) told = fn;
      else fn(judged);
    };
    done(null, socket, resumed, () => deps.nowMs() > notAfterMs, verdict);
  });
}

/**
 * A connection to an upstream that a later deny-list bans is cut (its owner sees it go): with a reset, as the
 * inbound side cuts a banned peer's, so that a TCP tunnel on it reaches the app behind that upstream as an abort,
 * not as its client's orderly end (audit 38a F1).
 */
function closeWhenBanned(socket: tls.TLSSocket, peer: DenyCandidate, deps: MtlsDeps): void {
  const off = deps.denyList.subscribe((list) => {
    if (!deniedBy(list, peer)) return;
    off();
    deps.metrics.connectionsRevoked(deps.direction, 1);
    resetSocket(socket);
  });
  socket.once('close', off);
}

export function mtlsConnector(target: MtlsTarget, deps: MtlsDeps): Connector {
  const session: SessionMemory = {};
  return (done) => mtlsConnect(target, deps, session, done, directReads());
}

/** Plaintext to the local app (loopback); `onOpened` counts each connection made (tessera_upstream_connections_opened_total). */
export function plainConnector(host: string, port: number, timeoutMs: number, onOpened?: () => void): Connector {
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
      onOpened?.();
      done(null, socket, false);
    });
  };
}
