// The dialing side of the multiplexed transport for one endpoint: the keep-alive pool's connector, handing out
// streams of one mTLS session instead of one connection each. A session opens streams up to the limit its server
// announced, then another session is dialed (as Envoy does past max_concurrent_streams). After this proxy's SVID
// changes, new streams go to a session dialed with the new SVID and the old one drains (GOAWAY, closed when its
// streams are done). A peer that does not offer `tessera-mux/1` (a Tessera proxy with the transport off, or any
// other mTLS HTTP/1.1 server) gets today's connection per exchange, remembered for a while so that each new
// connection does not try the transport again. With `sessions` > 1 (transport.sessionsPerPeer) it keeps that many
// sessions and opens each stream on the least loaded: SO_REUSEPORT spreads connections, not streams, so this is
// how one caller reaches several listener workers of the same peer.
import { MUX_ALPN } from './mux-frame.js';
import { type MuxEndReason, MuxSession } from './mux-session.js';
import type { Connector } from '../upstream/connection-pool.js';
import { directReads, type MtlsDeps, type MtlsTarget, mtlsConnect, type SessionMemory } from '../upstream/connectors.js';
import type { MuxMetrics } from '../telemetry/mux-metrics.js';

export interface MuxDialerOptions {
  readonly keepaliveIntervalMs: number;
  readonly keepaliveTimeoutMs: number;
  /** A session with no stream for this long closes. */
  readonly idleTimeoutMs: number;
  readonly metrics: MuxMetrics;
  /** Sessions kept to the peer (at least 1); dialed together on first use, each new stream on the least loaded. */
  readonly sessions?: number;
}

type Done = Parameters<Connector>[0];

/** How long a peer that answered without the transport is dialed with HTTP/1.1 only. */
const PLAIN_MEMORY_MS = 60_000;

interface Dialed {
  readonly session: MuxSession;
  readonly generation: number;
  readonly resumed: boolean;
  readonly startedMs: number;
  /**
   * True once the server certificate is past its notAfter (mtlsConnect's `retired`): the session takes no new
   * stream after it (as HTTP/2 upstreams). From the verified leaf, also on a resumed connection, where Node shows
   * no peer certificate.
   */
  readonly peerExpired: () => boolean;
}

export class MuxDialer {
  readonly #target: MtlsTarget;
  readonly #plainTarget: MtlsTarget;
  readonly #mtls: MtlsDeps;
  readonly #o: MuxDialerOptions;
  /** Sessions wanted to the peer (transport.sessionsPerPeer). */
  readonly #want: number;
  readonly #ticket: SessionMemory = {};
  readonly #plainTicket: SessionMemory = {};
  /** Sessions that take new streams (or will, once their SETTINGS arrive). */
  #live: Dialed[] = [];
  /** Sessions going away: kept for their keepalive until they end. */
  #draining: Dialed[] = [];
  /** Connector calls waiting for a session to become ready. */
  #waiting: Done[] = [];
  #dials = 0;
  #plainUntilMs = 0;
  #closed = false;
  readonly connect: Connector;

  constructor(target: MtlsTarget, mtls: MtlsDeps, opts: MuxDialerOptions) {
    this.#target = { ...target, alpn: [MUX_ALPN, ...target.alpn] };
    this.#plainTarget = target;
    this.#mtls = mtls;
    this.#o = opts;
    this.#want = Math.max(1, opts.sessions ?? 1);
    this.connect = (done) => this.#connect(done);
  }

  /** Sessions open (for tests and the admin view). */
  get sessions(): number {
    return this.#live.length + this.#draining.length;
  }

  #connect(done: Done): void {
    if (this.#closed) {
      done(new Error('endpoint closed'));
      return;
    }
    if (this.#mtls.nowMs() < this.#plainUntilMs) {
      mtlsConnect(this.#plainTarget, this.#mtls, this.#plainTicket, done, directReads());
      return;
    }
    const d = this.#usable();
    if (d) {
      this.#o.metrics.streamOpened('outbound');
      const s = d.session.open();
      done(null, s, d.resumed, () => this.#retiredNow(d));
      // Fewer sessions than wanted (one ended, or a rotation retired them): one more, while this one serves.
      if (this.#pending() === 0 && this.#live.length < this.#want) this.#dial();
      return;
    }
    this.#waiting.push(done);
    // One round of dials on the way at a time (dialing, or connected and awaiting SETTINGS): waiters beyond what it
    // can take dial again when it is ready. With none live, the whole set is dialed at once so that the first
    // burst of streams spreads over all of them.
    if (this.#pending() === 0) for (let i = this.#live.length === 0 ? this.#want : 1; i > 0; i--) this.#dial();
  }

  /** Sessions on the way: dialing, or connected and awaiting their SETTINGS. */
  #pending(): number {
    let n = this.#dials;
    for (const x of this.#live) if (!x.session.ready && !x.session.ended) n++;
    return n;
  }

  /**
   * The ready session of the current SVID with room for a stream and the fewest streams; older ones are set
   * draining on the way.
   */
  #usable(): Dialed | null {
    const generation = this.#mtls.identity.current?.generation ?? -1;
    let found: Dialed | null = null;
    for (const d of [...this.#live]) {
      if (d.session.ended) this.#live = this.#live.filter((x) => x !== d);
      else if (this.#stale(d, generation)) this.#retire(d);
      else if (d.session.canOpen && (!found || d.session.streamCount < found.session.streamCount)) found = d;
    }
    return found;
  }

  /** Made with an SVID this proxy no longer serves, or to a server whose certificate has expired since. */
  #stale(d: Dialed, generation: number): boolean {
    return d.generation !== generation || d.peerExpired();
  }

  /**
   * Whether a pooled stream of `d` may carry another exchange: not once its session goes away or is stale, so
   * after a rotation idle streams are dropped at their next lease or sweep, not reused for ever under load.
   */
  #retiredNow(d: Dialed): boolean {
    if (!d.session.retiring && this.#stale(d, this.#mtls.identity.current?.generation ?? -1)) this.#retire(d);
    return d.session.retiring;
  }

  #retire(d: Dialed): void {
    this.#live = this.#live.filter((x) => x !== d);
    this.#draining.push(d);
    d.session.drain();
  }

  #dial(): void {
    this.#dials++;
    const snapshot = this.#mtls.identity.current;
    mtlsConnect(
      this.#target,
      this.#mtls,
      this.#ticket,
      (err, socket, resumed, retired) => {
        this.#dials--;
        if (err || !socket) return this.#roundFailed(err ?? new Error('connect failed'));
        if (this.#closed) {
          socket.destroy();
          return this.#failWaiters(new Error('endpoint closed'));
        }
        if (socket.alpnProtocol !== MUX_ALPN) {
          // The peer serves HTTP/1.1 only: this connection goes to the first waiter, the rest dial HTTP/1.1.
          this.#o.metrics.fallback('outbound');
          this.#plainUntilMs = this.#mtls.nowMs() + PLAIN_MEMORY_MS;
          const waiting = this.#waiting.splice(0);
          const first = waiting.shift();
          if (first) first(null, socket, resumed ?? false, retired);
          else socket.destroy(); // another dial of the round already served the waiters
          for (const w of waiting) this.#connect(w);
          return;
        }
        const d: Dialed = {
          session: new MuxSession(socket, {
            role: 'client',
            nowMs: this.#mtls.nowMs,
            maxStreams: 0, // the server's limit applies: it announces it
            keepaliveIntervalMs: this.#o.keepaliveIntervalMs,
            keepaliveTimeoutMs: this.#o.keepaliveTimeoutMs,
            // Waiters are served once the whole round is ready (or failed), so they spread over it.
            onReady: () => {
              if (this.#pending() === 0) this.#serveWaiters();
            },
            onEnd: (reason) => this.#ended(d, reason),
            onWrite: () => this.#o.metrics.tlsWrite('outbound'),
            onRead: () => this.#o.metrics.tlsRead('outbound'),
          }),
          generation: snapshot?.generation ?? -1,
          resumed: resumed ?? false,
          startedMs: this.#mtls.nowMs(),
          peerExpired: retired ?? (() => true),
        };
        this.#o.metrics.sessionOpened('outbound');
        this.#live.push(d);
      },
      directReads(),
    );
  }

  #serveWaiters(): void {
    const waiting = this.#waiting.splice(0);
    for (const w of waiting) this.#connect(w);
  }

  /** A dial failed: the waiters fail only when nothing else of the round can serve them. */
  #roundFailed(err: Error): void {
    if (this.#pending() > 0) return;
    if (this.#usable()) this.#serveWaiters();
    else this.#failWaiters(err);
  }

  #failWaiters(err: Error): void {
    for (const w of this.#waiting.splice(0)) w(err);
  }

  #ended(d: Dialed, reason: MuxEndReason): void {
    this.#o.metrics.sessionEnded('outbound', reason);
    this.#live = this.#live.filter((x) => x !== d);
    this.#draining = this.#draining.filter((x) => x !== d);
    if (this.#waiting.length === 0 || this.#pending() > 0) return;
    // Ended before its SETTINGS: a broken peer; its waiters fail (the route may retry elsewhere) rather than redial
    // it in a loop, unless another session of the round serves them. A session that had served is simply replaced,
    // and so is one made with an SVID this proxy has replaced since: the sweep or the next connect retires it (and
    // it closes at once, having no stream), which says nothing of the peer; its waiters go to a session dialed with
    // the SVID in force (they failed with a 502 before). Without a rotation, no redial loop: the rule above holds.
    const rotated = d.generation !== (this.#mtls.identity.current?.generation ?? -1);
    if (!d.session.ready && !rotated) this.#roundFailed(new Error(`multiplexed session ended before it was ready (${reason})`));
    else this.#serveWaiters();
  }

  /**
   * The pool's sweep: keepalive and idle close of every session; a server that never sends SETTINGS is given up.
   * Returns whether a session is left (it needs the next sweep's keepalive).
   */
  sweep(): boolean {
    const now = this.#mtls.nowMs();
    const generation = this.#mtls.identity.current?.generation ?? -1;
    for (const d of [...this.#live, ...this.#draining]) {
      if (!d.session.ready && now - d.startedMs > this.#mtls.handshakeTimeoutMs) {
        d.session.close();
        continue;
      }
      if (!d.session.retiring && this.#stale(d, generation)) this.#retire(d);
      d.session.tick(this.#o.idleTimeoutMs);
    }
    return this.#live.length + this.#draining.length > 0;
  }

  /** The pool closed: every session drains (its streams finish), nothing new is dialed. */
  close(): void {
    this.#closed = true;
    this.#failWaiters(new Error('endpoint closed'));
    for (const d of this.#live.splice(0)) {
      this.#draining.push(d);
      d.session.drain();
    }
  }
}
