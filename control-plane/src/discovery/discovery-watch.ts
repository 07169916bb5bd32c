// tessera.discovery.v1.Discovery/Watch: authenticates the caller by its client SVID (as Config/Watch does), sends a
// full snapshot of the services it asks for (once the endpoint sources have synced: a replica just started does not
// hand out services it has not listed yet), then, on each registry change, only the changed ones among them (each
// complete); coalesces updates for a slow reader; ends the stream when the caller's SVID expires.
import type * as grpc from '@grpc/grpc-js';
import type { Clock } from '../../../common/clock.js';
import type { DiscoveryUpdateMsg, DiscoveryWatchRequestMsg, ServiceEndpointsMsg } from '../../../common/contract/discovery-v1.js';
import { TesseraError, isTesseraError } from '../../../common/errors.js';
import { endpointToWire, isServiceName } from '../../../common/routing/service-endpoint.js';
import { toGrpcError } from '../api/grpc-status.js';
import { RejectedMessage } from '../api/guarded-service.js';
import { admitStream, authenticateStream, type OpenStream, OpenStreams, streamOpenRate, type StreamCallerDeps } from '../api/stream-caller.js';
import { RateLimiter } from '../issuance/rate-limiter.js';
import type { ServiceRegistry } from './service-registry.js';

/** Most services one Watch may name (a forward proxy that needs more asks for `all`). */
export const MAX_WATCHED_SERVICES = 1000;

export interface DiscoveryHubOptions extends StreamCallerDeps {
  readonly registry: ServiceRegistry;
  readonly clock: Clock;
  readonly maxServices?: number;
  readonly onWatchers?: (count: number) => void;
  /** A Watch refused: bad SVID (audited like Config/Watch), bad names, too many. */
  readonly onRefused?: (code: string, caller: string, detail: string | undefined, spiffeId?: string) => void;
  /** The sources' first sync: a stream's first (full) snapshot waits for it. Absent: sent at once. */
  readonly sync?: { readonly synced: boolean; whenSynced(fn: () => void): void };
}

interface Watcher extends OpenStream {
  readonly call: grpc.ServerWritableStream<unknown, DiscoveryUpdateMsg>;
  /** undefined = every service. */
  readonly services: ReadonlySet<string> | undefined;
  /** Changes not yet written because the stream's buffer is full; flushed on 'drain'. */
  pending: Set<string> | undefined;
  /** Opened before the sources synced: nothing written yet; its first write is the full snapshot. */
  waiting: boolean;
}

export class DiscoveryHub {
  readonly #o: DiscoveryHubOptions;
  readonly #watchers: OpenStreams<Watcher>;
  readonly #unsubscribe: () => void;

  constructor(opts: DiscoveryHubOptions) {
    this.#o = opts;
    this.#watchers = new OpenStreams<Watcher>({ ...(opts.onWatchers ? { onCount: opts.onWatchers } : {}), opens: new RateLimiter(opts.openRate ?? streamOpenRate(opts), opts.clock) });
    this.#unsubscribe = opts.registry.subscribe((changed) => this.#changed(changed));
    opts.sync?.whenSynced(() => this.#synced());
  }

  get watchers(): number {
    return this.#watchers.size;
  }

  /** The short tick: end streams whose client SVID has expired or whose caller was banned since. */
  tick(): void {
    this.#watchers.sweep(this.#o.clock.nowMs(), this.#o.admit);
  }

  /** Ends every stream with OK (shutdown): proxies keep their endpoints and reconnect. */
  endAll(): void {
    this.#unsubscribe();
    this.#watchers.endAll();
  }

  handlers(): grpc.UntypedServiceImplementation {
    return {
      Watch: (call: grpc.ServerWritableStream<DiscoveryWatchRequestMsg | RejectedMessage, DiscoveryUpdateMsg>) => this.#watch(call),
    };
  }

  #watch(call: grpc.ServerWritableStream<DiscoveryWatchRequestMsg | RejectedMessage, DiscoveryUpdateMsg>): void {
    const peer = authenticateStream(call, this.#o);
    if (!peer) return;
    let services: ReadonlySet<string> | undefined;
    try {
      services = this.#asked(call.request);
    } catch (e) {
      const err = isTesseraError(e) ? e : new TesseraError('TESSERA_ERR_ISSUANCE_BAD_REQUEST');
      this.#o.onRefused?.(err.code, call.getPeer(), err.message, peer.spiffeId.toString());
      call.emit('error', toGrpcError(err));
      return;
    }
    if (!admitStream(call, peer, this.#watchers, this.#o)) return;
    const w: Watcher = { peer, call, services, pending: undefined, waiting: this.#o.sync?.synced === false };
    this.#watchers.add(w);
    call.on('drain', () => this.#flush(w));
    if (!w.waiting) this.#first(w);
  }

  #first(w: Watcher): void {
    w.waiting = false;
    this.#write(w, true, w.services ? [...w.services].sort() : this.#o.registry.services());
  }

  /** The sources synced (or their deadline passed): the streams that waited get their full snapshot now. */
  #synced(): void {
    for (const w of this.#watchers) if (w.waiting) this.#first(w);
  }

  /** The services a request watches (undefined: all); throws the refusal for a bad request. */
  #asked(req: DiscoveryWatchRequestMsg | RejectedMessage): ReadonlySet<string> | undefined {
    if (req instanceof RejectedMessage) throw new TesseraError(req.code);
    if (req.all) return undefined;
    const max = this.#o.maxServices ?? MAX_WATCHED_SERVICES;
    const names = new Set(req.services);
    if (names.size > max) throw new TesseraError('TESSERA_ERR_DISCOVERY_TOO_MANY', `${names.size} services asked for; at most ${max} (or all: true)`);
    for (const n of names) {
      if (!isServiceName(n)) throw new TesseraError('TESSERA_ERR_DISCOVERY_BAD_SERVICE_NAME', `${JSON.stringify(n.slice(0, 80))} is not a service name`);
    }
    return names;
  }

  #changed(changed: ReadonlySet<string>): void {
    for (const w of this.#watchers) {
      if (w.waiting) continue; // its full snapshot, still to come, will hold the change
      const mine = w.services ? [...changed].filter((s) => w.services!.has(s)) : [...changed];
      if (mine.length === 0) continue;
      if (w.pending) for (const s of mine) w.pending.add(s);
      else this.#write(w, false, mine.sort());
    }
  }

  #flush(w: Watcher): void {
    const pending = w.pending;
    if (!pending || !this.#watchers.has(w)) return;
    w.pending = undefined;
    this.#write(w, false, [...pending].sort());
  }

  #write(w: Watcher, full: boolean, names: readonly string[]): void {
    const r = this.#o.registry;
    const services: ServiceEndpointsMsg[] = names.map((service) => ({ service, endpoints: r.endpoints(service).map(endpointToWire) }));
    const ok = w.call.write({ version: String(r.version), full, services, generated_at_unix_ms: String(this.#o.clock.nowMs()) });
    // A reader that does not keep up: later changes are merged into one update (each service complete), so what
    // waits for it is bounded by the number of services, not the number of changes.
    if (!ok) w.pending = new Set();
  }
}
