// Keeps one server stream open: opens it, hands every message on, and after an end or error reopens it after a
// jittered exponential backoff (reset once a message is taken: one the handler refuses by failing the stream does
// not reset it, so a control plane that keeps sending what the proxy refuses is retried ever more slowly, not 4
// times a second; the control-plane endpoints' full-jitter delay when given). Timers and randomness are injected.
import { type BackoffOptions, backoffDelay } from '../../../common/backoff.js';
import { CONTROL_PLANE_RECONNECT_MAX_MS } from '../../../common/routing/reconnect-window.js';
import { realTimers, type Timers } from '../../../shared-io/timers.js';

export interface StreamHandle {
  cancel(): void;
  /** The control-plane address the stream is open to (absent where there is only one). */
  readonly address?: string;
}

export interface StreamCallbacks<T> {
  onMessage(msg: T): void;
  /** The stream ended or failed; `error` is absent for a clean end. */
  onClose(error?: unknown): void;
}

export const DEFAULT_RECONNECT_BACKOFF: BackoffOptions = Object.freeze({ initialMs: 250, maxMs: CONTROL_PLANE_RECONNECT_MAX_MS, multiplier: 2, jitter: 0.3 });

export interface ReconnectingStreamOptions<T> {
  /** Opens one stream; throwing counts as a failed attempt. */
  readonly open: (cb: StreamCallbacks<T>) => StreamHandle;
  readonly onMessage: (msg: T) => void;
  /** Every close, with the delay until the next attempt (for logs and metrics). */
  readonly onDisconnect?: (error: unknown, retryInMs: number) => void;
  readonly backoff?: BackoffOptions;
  /** The delay before the `attempt`-th reconnect (0-based), instead of `backoff` (ControlPlaneEndpoints.retryDelayMs). */
  readonly retryDelayMs?: (attempt: number) => number;
  /** The reconnect delay runs here (default: the real timers, unref'd). */
  readonly timers?: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
  readonly random?: () => number;
}

export class ReconnectingStream<T> {
  readonly #o: ReconnectingStreamOptions<T>;
  #attempt = 0;
  #stream: StreamHandle | undefined;
  #timer: unknown;
  #running = false;
  #generation = 0;

  constructor(opts: ReconnectingStreamOptions<T>) {
    this.#o = opts;
  }

  get connected(): boolean {
    return this.#stream !== undefined;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#connect();
  }

  /** Drops the current stream and opens a new one at once (e.g. after the client certificate rotated). */
  restart(): void {
    if (!this.#running) return;
    this.#clearTimer();
    this.#drop();
    this.#attempt = 0;
    this.#connect();
  }

  stop(): void {
    this.#running = false;
    this.#clearTimer();
    this.#drop();
  }

  #drop(): void {
    this.#generation++;
    const s = this.#stream;
    this.#stream = undefined;
    s?.cancel();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) (this.#o.timers ?? realTimers).clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #connect(): void {
    if (!this.#running) return;
    const gen = ++this.#generation;
    const current = () => gen === this.#generation && this.#running;
    try {
      this.#stream = this.#o.open({
        onMessage: (msg) => {
          if (!current()) return;
          this.#o.onMessage(msg);
          // Still open: the message was taken. Closed by the handler (a refusal): the backoff goes on growing.
          if (current() && this.#timer === undefined) this.#attempt = 0;
        },
        onClose: (error) => {
          if (!current()) return;
          this.#stream = undefined;
          this.#schedule(error);
        },
      });
    } catch (e) {
      this.#stream = undefined;
      this.#schedule(e);
    }
  }

  #schedule(error: unknown): void {
    if (!this.#running || this.#timer !== undefined) return;
    const attempt = this.#attempt++;
    const delay = this.#o.retryDelayMs ? this.#o.retryDelayMs(attempt) : backoffDelay(attempt, this.#o.backoff ?? DEFAULT_RECONNECT_BACKOFF, this.#o.random);
    this.#o.onDisconnect?.(error, delay);
    this.#timer = (this.#o.timers ?? realTimers).setTimeout(() => {
      this.#timer = undefined;
      this.#connect();
    }, delay);
  }
}
