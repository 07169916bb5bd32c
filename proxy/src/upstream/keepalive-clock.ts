// When a long-lived session to a peer proxy sends a keepalive PING and when its peer counts as gone, apart from the
// wire: a PING after `intervalMs` with nothing read; one unanswered for longer than `timeoutMs` means the peer is
// frozen or its host gone (no RST ever comes). The multiplexed transport's sessions (mux/mux-session.ts) and the
// HTTP/2 sessions to peer proxies (h2/h2-keepalive.ts) keep this one clock; each sends its own PING.

/** transport.keepaliveInterval and transport.keepaliveTimeout, in ms. */
export interface KeepaliveSettings {
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

export class KeepaliveClock {
  readonly #s: KeepaliveSettings;
  #lastReadMs: number;
  /** When the PING still unanswered was sent; null when none is. */
  #pingSentMs: number | null = null;

  constructor(settings: KeepaliveSettings, nowMs: number) {
    this.#s = settings;
    this.#lastReadMs = nowMs;
  }

  /** Something arrived from the peer. */
  read(nowMs: number): void {
    this.#lastReadMs = nowMs;
  }

  /** A PING of ours is out and not answered yet. */
  get awaiting(): boolean {
    return this.#pingSentMs !== null;
  }

  /** Our PING was answered. */
  answered(): void {
    this.#pingSentMs = null;
  }

  /** The PING out has gone unanswered for longer than the timeout: the peer is gone. */
  expired(nowMs: number): boolean {
    return this.#pingSentMs !== null && nowMs - this.#pingSentMs > this.#s.timeoutMs;
  }

  /** Nothing read for the interval and no PING out: true, and the PING the caller sends now counts as sent. */
  pingDue(nowMs: number): boolean {
    if (this.#pingSentMs !== null || nowMs - this.#lastReadMs <= this.#s.intervalMs) return false;
    this.#pingSentMs = nowMs;
    return true;
  }

  /** When the next check is due: the PING's timeout while one is out, else the end of the quiet interval. */
  nextCheckMs(): number {
    return this.#pingSentMs !== null ? this.#pingSentMs + this.#s.timeoutMs : this.#lastReadMs + this.#s.intervalMs;
  }
}
