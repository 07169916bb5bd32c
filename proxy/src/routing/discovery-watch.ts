// Keeps Discovery/Watch open (mTLS with the current SVID, reopened after each rotation, jittered backoff on loss)
// and feeds each update into the ServiceDirectory. A refused update keeps the old endpoints and reopens the
// stream, so the next full snapshot resynchronises; the control plane down keeps the last endpoints. Each
// control-plane replica numbers its updates itself: the first full update from another replica (a failover or a
// failback) is taken whatever its version.
import type { DiscoveryUpdateMsg, DiscoveryWatchRequestMsg } from '../../../common/contract/discovery-v1.js';
import { describeError, TesseraError } from '../../../common/errors.js';
import type { OutboundConfig } from '../config/proxy-config.js';
import type { IssuedSvid } from '../identity/control-plane-svid-source.js';
import { ReconnectingStream, type ReconnectingStreamOptions, type StreamCallbacks, type StreamHandle } from '../identity/reconnecting-stream.js';
import type { ServiceDirectory, WatchedServices } from './service-directory.js';

/**
 * What the outbound listeners route to: their `service:` names, or every service when one is a forward proxy (it
 * routes by whatever host a request names, so it cannot list them up front); the named ones are then kept first
 * should the view be over the directory's cap.
 */
export function watchedServicesOf(outbound: readonly Pick<OutboundConfig, 'route'>[]): WatchedServices | undefined {
  const services = new Set(outbound.flatMap((o) => (o.route.kind === 'service' ? [o.route.service] : [])));
  if (outbound.some((o) => o.route.kind === 'http-proxy')) return { all: true, keep: services };
  return services.size > 0 ? { all: false, services } : undefined;
}

export function watchRequestOf(w: WatchedServices): DiscoveryWatchRequestMsg {
  return w.all ? { services: [], all: true } : { services: [...w.services].sort(), all: false };
}

export type DiscoveryWatchEvent =
  | { readonly kind: 'applied'; readonly version: string; readonly full: boolean; readonly changed: readonly string[]; readonly leftOut: number }
  | { readonly kind: 'refused'; readonly version: string; readonly error: string }
  /** The view is over the directory's cap: `leftOut` services are not held (emitted on each full update and when the count changes). */
  | { readonly kind: 'over-cap'; readonly version: string; readonly leftOut: number; readonly kept: number }
  /** The first update of a stream arrived: the control plane is reachable and answering. */
  | { readonly kind: 'connected' }
  | { readonly kind: 'disconnected'; readonly error: string; readonly retryInMs: number };

/** Reconnect timing (timers, random, backoff) is ReconnectingStream's. */
export interface DiscoveryWatchOptions extends Pick<ReconnectingStreamOptions<DiscoveryUpdateMsg>, 'timers' | 'random' | 'backoff' | 'retryDelayMs'> {
  /** Opens the stream with this SVID as client certificate (ControlPlaneClient.watchDiscovery). */
  readonly open: (svid: IssuedSvid, req: DiscoveryWatchRequestMsg, cb: StreamCallbacks<DiscoveryUpdateMsg>) => StreamHandle;
  readonly currentSvid: () => IssuedSvid | undefined;
  readonly directory: ServiceDirectory;
  readonly watched: WatchedServices;
  readonly onEvent?: (e: DiscoveryWatchEvent) => void;
}

export class DiscoveryWatch {
  readonly #o: DiscoveryWatchOptions;
  readonly #stream: ReconnectingStream<DiscoveryUpdateMsg>;
  readonly #request: DiscoveryWatchRequestMsg;
  /** The stream open now, with its callbacks (a refusal fails it through them, so the backoff applies). */
  #current: { handle: StreamHandle | undefined; cb: StreamCallbacks<DiscoveryUpdateMsg>; answered: boolean } | undefined;
  #first: (() => void)[] = [];
  #applied = false;
  /** The control-plane address the applied version came from. */
  #appliedFrom: string | undefined;

  constructor(opts: DiscoveryWatchOptions) {
    this.#o = opts;
    this.#request = watchRequestOf(opts.watched);
    this.#stream = new ReconnectingStream<DiscoveryUpdateMsg>({
      open: (cb) => {
        const svid = opts.currentSvid();
        if (!svid) throw new TesseraError('TESSERA_ERR_DISCOVERY_NO_SVID', 'no SVID yet to authenticate the watch with');
        const slot = { handle: undefined as StreamHandle | undefined, cb, answered: false };
        this.#current = slot;
        try {
          slot.handle = opts.open(svid, this.#request, {
            // A stream failed by a refusal is no longer current: what it still delivers is dropped.
            onMessage: (m) => {
              if (this.#current === slot) cb.onMessage(m);
            },
            onClose: (e) => {
              if (this.#current === slot) this.#current = undefined;
              cb.onClose(e);
            },
          });
        } catch (e) {
          if (this.#current === slot) this.#current = undefined;
          throw e;
        }
        return slot.handle;
      },
      onMessage: (msg) => this.#onUpdate(msg),
      onDisconnect: (error, retryInMs) => opts.onEvent?.({ kind: 'disconnected', error: errorText(error), retryInMs }),
      ...(opts.timers ? { timers: opts.timers } : {}),
      ...(opts.random ? { random: opts.random } : {}),
      ...(opts.backoff ? { backoff: opts.backoff } : {}),
      ...(opts.retryDelayMs ? { retryDelayMs: opts.retryDelayMs } : {}),
    });
  }

  /** True while a stream is open and has delivered its first update. */
  get connected(): boolean {
    return this.#current?.answered === true;
  }

  start(): void {
    this.#stream.start();
  }

  /** Reopens the stream with the current SVID (after each rotation: the old SVID's stream ends at its expiry). */
  restart(): void {
    this.#current = undefined;
    this.#stream.restart();
  }

  stop(): void {
    this.#current = undefined;
    this.#stream.stop();
  }

  /** Resolves once an update has been applied (endpoints known, possibly none). */
  firstUpdate(): Promise<void> {
    if (this.#applied) return Promise.resolve();
    return new Promise((ok) => this.#first.push(ok));
  }

  #onUpdate(msg: DiscoveryUpdateMsg): void {
    const slot = this.#current;
    const firstOfStream = slot !== undefined && !slot.answered;
    if (slot) slot.answered = true;
    if (firstOfStream) this.#o.onEvent?.({ kind: 'connected' });
    let changed: readonly string[];
    const leftOutBefore = this.#o.directory.leftOut;
    let leftOut: number;
    try {
      // A stream starts with the complete state; an increment without it could apply to a stale base.
      const from = slot?.handle?.address;
      const rebase = firstOfStream && this.#applied && from !== this.#appliedFrom;
      ({ changed, leftOut } = this.#o.directory.apply(msg, this.#o.watched, { requireFull: firstOfStream, rebase }));
      this.#appliedFrom = from;
    } catch (e) {
      this.#o.onEvent?.({ kind: 'refused', version: String(msg?.version).slice(0, 40), error: errorText(e) });
      this.#resync(e);
      return;
    }
    this.#applied = true;
    this.#o.onEvent?.({ kind: 'applied', version: this.#o.directory.version!, full: msg.full === true, changed, leftOut });
    if (leftOut > 0 && (msg.full === true || leftOut !== leftOutBefore)) this.#o.onEvent?.({ kind: 'over-cap', version: this.#o.directory.version!, leftOut, kept: this.#o.directory.names().length });
    for (const l of this.#first.splice(0)) l();
  }

  /** Ends the stream as failed: after the backoff a new one starts with a full snapshot. */
  #resync(error: unknown): void {
    const slot = this.#current;
    if (!slot) return;
    this.#current = undefined;
    slot.handle?.cancel();
    slot.cb.onClose(error);
  }
}

function errorText(e: unknown): string {
  return e === undefined ? 'stream ended' : describeError(e);
}
