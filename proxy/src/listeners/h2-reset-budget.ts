// Tessera's own rapid-reset accounting for an HTTP/2 server session (CVE-2023-44487). A stream the client gives up
// on (RST_STREAM of any code, NO_ERROR included) within PREMATURE_MS of its start and before any response head went
// out is premature: it may already have cost an upstream request, and returned nothing. A session is past its
// budget once more than `allowance` of its streams were premature AND they are more than half of the streams it has
// closed; its listener then cuts it with GOAWAY ENHANCE_YOUR_CALM and counts `premature_reset`. That is for
// sessions whose client is the one resetting (the edge's clients, an outbound listener's app). An inbound session's
// client is a mesh peer, mostly a proxy (an edge, an outbound sidecar) carrying many clients' requests on one
// session and passing their cancellations on: cutting it would let one anonymous edge client's rapid reset fail
// every other client's requests on it, and so would nghttp2's own RST_STREAM limit, which cuts a session with
// INTERNAL_ERROR past 1,000 resets. So an inbound session is drained instead (GOAWAY NO_ERROR: its open streams run
// to their end, the peer opens a new session) each time it has seen more premature resets than the allowance,
// whatever the ratio: far below nghttp2's limit, at the cost of a handshake per ~100 early cancellations.
//
// Why these numbers. Envoy (overload.premature_reset_*): a stream reset by the client within 1 s without a
// response is premature; a connection is closed once 500 of its streams have closed and at least half were
// premature, or as soon as 250 were. nghttp2 only rate-limits RST_STREAM frames (a token bucket of 1,000, refilled
// 33 a second; Node's streamResetBurst/streamResetRate), and a session is closed after 1,000 streams refused at the
// concurrency cap (MAX_REFUSED_FRAMES, h2-server-limits.ts), which a client that resets its own streams never reaches: 400 to
// 1,000 streams a connection reached the app (audit 7b). The allowance is a full window of streams
// (limits.maxConcurrentStreams, at least MIN_ALLOWANCE): a client may cancel everything it has in flight at once (a
// browser leaving a page, a gRPC deadline hitting a fan-out) and must not be cut for it. The ratio leaves alone a
// client whose cancellations come among completed requests however many there are (a gRPC client cancelling some
// calls); an abuser keeping under it must complete a real request for every stream it resets. Two counters per
// session, O(1) per stream.

/** A reset later than this after the stream began is an ordinary cancellation (Envoy's default, 1 s). */
export const PREMATURE_MS = 1_000;
/** The fewest premature resets a session is always allowed. */
export const MIN_ALLOWANCE = 100;

/** What a session past its budget gets: `cut` (GOAWAY ENHANCE_YOUR_CALM, closed now) or `drain` (GOAWAY NO_ERROR). */
export type ResetAction = 'cut' | 'drain';

export class ResetBudget {
  readonly action: ResetAction;
  readonly #allowance: number;
  #closed = 0;
  #premature = 0;

  /** `maxConcurrentStreams`: the session's stream window (limits.maxConcurrentStreams). */
  constructor(maxConcurrentStreams: number, action: ResetAction) {
    this.action = action;
    this.#allowance = Math.max(MIN_ALLOWANCE, maxConcurrentStreams);
  }

  /**
   * Notes a closed stream: `answered`, a response head went out (or was queued) on it; `lifetimeMs`, from its
   * start to its close. True when the session is past its budget (the caller closes it).
   */
  closed(answered: boolean, lifetimeMs: number): boolean {
    this.#closed++;
    if (answered || lifetimeMs >= PREMATURE_MS) return false;
    this.#premature++;
    // A drained session's peer opens another, so the ratio that spares a client's cancellations is not needed.
    return this.#premature > this.#allowance && (this.action === 'drain' || this.#premature * 2 > this.#closed);
  }

  get premature(): number {
    return this.#premature;
  }
}
