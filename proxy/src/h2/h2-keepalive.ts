// The keepalive of an HTTP/2 session to a peer proxy (h2-upstream.ts), kept as the multiplexed transport's is
// (upstream/keepalive-clock.ts): a PING after transport.keepaliveInterval with nothing read; a session whose PING
// goes unanswered for transport.keepaliveTimeout is cut as a hop is: each open stream reset with CANCEL (h2-forward.ts
// then resets the client's stream, or ends its gRPC call UNAVAILABLE, and charges the endpoint a reset), the session
// destroyed. Without it, streams to a frozen peer or to a host gone (no RST ever comes) stayed open for ever (audit
// 54c). node:http2 reads the socket natively: what was read shows as the growth of its byte count, seen at each sweep.
import type * as http2 from 'node:http2';
import { probeSessionSocket } from '../../../shared-io/h2-socket-probe.js';
import { KeepaliveClock, type KeepaliveSettings } from '../upstream/keepalive-clock.js';
import { cancelStream } from './stream-cancel.js';

export class H2Keepalive {
  readonly #session: http2.Http2Session;
  readonly #nowMs: () => number;
  readonly #onDead: () => void;
  readonly #clock: KeepaliveClock;
  /** The session's open streams, reset when it is cut (node:http2 lists them nowhere public). */
  readonly #streams = new Set<http2.Http2Stream>();
  #bytesRead = 0;

  /** `onDead`: called once the session was cut for an unanswered PING. */
  constructor(session: http2.Http2Session, settings: KeepaliveSettings, nowMs: () => number, onDead: () => void) {
    this.#session = session;
    this.#nowMs = nowMs;
    this.#onDead = onDead;
    this.#clock = new KeepaliveClock(settings, nowMs());
  }

  track(stream: http2.Http2Stream): void {
    this.#streams.add(stream);
    stream.once('close', () => this.#streams.delete(stream));
  }

  /** The sweep: notes whether anything was read since the last one, sends a PING when due, cuts a dead peer's session. */
  tick(): void {
    const session = this.#session;
    if (session.destroyed) return;
    // A peer's reset that failed a write of ours is missed by node:http2 over TLS until the socket reads again.
    probeSessionSocket(session);
    const now = this.#nowMs();
    const read = session.socket?.bytesRead ?? 0;
    if (read !== this.#bytesRead) {
      this.#bytesRead = read;
      this.#clock.read(now);
    }
    if (this.#clock.expired(now)) {
      this.#cut();
      return;
    }
    if (!this.#clock.pingDue(now)) return;
    try {
      // Answered or not, the callback comes: with an error once the session is gone (then the sweep has stopped).
      session.ping((err) => {
        if (!err) this.#clock.answered();
      });
    } catch {
      // Destroyed meanwhile: nothing to keep alive.
    }
  }

  #cut(): void {
    for (const s of [...this.#streams]) cancelStream(s);
    this.#session.destroy();
    // Destroyed with a write of it hanging, its socket would stay open: a read surfaces the reset, if there was one.
    probeSessionSocket(this.#session);
    this.#onDead();
  }
}

/**
 * H2Upstream's keepalive for sessions to a peer proxy: transport.keepaliveInterval and keepaliveTimeout, as the
 * multiplexed transport's; each cut counted with its keepalive ends (the dialing side: `outbound`, the edge's too).
 */
export function peerKeepalive(deps: {
  readonly transport: { readonly keepaliveIntervalMs: number; readonly keepaliveTimeoutMs: number };
  readonly metrics: { readonly mux: { h2KeepaliveCut(direction: string): void } };
}): { readonly keepalive: KeepaliveSettings; readonly onKeepaliveCut: () => void } {
  return {
    keepalive: { intervalMs: deps.transport.keepaliveIntervalMs, timeoutMs: deps.transport.keepaliveTimeoutMs },
    onKeepaliveCut: () => deps.metrics.mux.h2KeepaliveCut('outbound'),
  };
}
