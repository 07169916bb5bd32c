// The proxy's last-known endpoints per service (DESIGN.md section 11): one writer (the discovery watch), many
// readers (the balancers, the forward-proxy listener). An update is validated whole before anything is swapped;
// a malformed one is refused whole and the old endpoints stay. Listeners hear only of services that changed.
// Watching all, a view over MAX_SERVICES is not refused (that would freeze the proxy on stale endpoints and reopen
// the stream in a loop, each time costing the control plane a full snapshot): the directory keeps its own
// listeners' services, then those it already held, then the rest by name, up to the cap, and counts what it left out.
import { type DiscoveryUpdateMsg, MAX_VIEW_SERVICES } from '../../../common/contract/discovery-v1.js';
import { TesseraError } from '../../../common/errors.js';
import { endpointAddress, endpointFromWire, isServiceName, type ServiceEndpoint, sameEndpoint } from '../../../common/routing/service-endpoint.js';
import { SpiffeId } from '../../../common/spiffe/spiffe-id.js';

/** Bounds on one update (and on what the directory holds): a flapping or hostile source cannot grow memory past them. */
export const MAX_ENDPOINTS_PER_SERVICE = 10_000;
/** Most services the directory holds; more in a view are left out (counted), not refused. */
export const MAX_SERVICES = MAX_VIEW_SERVICES;
/** Most services one update may carry at all (bounds the work of validating it); more refuses it. */
export const MAX_UPDATE_SERVICES = 20 * MAX_SERVICES;

export type EndpointList = readonly ServiceEndpoint[];
export type ServiceListener = (endpoints: EndpointList, service: string) => void;
/** `endpoints` undefined: the service is gone from the directory (a forward proxy forgets it). */
export type DirectoryListener = (service: string, endpoints: EndpointList | undefined) => void;

/**
 * Which services the watch asked for: those names, or every service (a forward-proxy listener); `keep`, with all:
 * the names the proxy's `service:` listeners route to, kept first when a view is over MAX_SERVICES.
 */
export type WatchedServices = { readonly all: true; readonly keep?: ReadonlySet<string> } | { readonly all: false; readonly services: ReadonlySet<string> };

const EMPTY: EndpointList = Object.freeze([]);

/** Workload IDs only: an endpoint presents an SVID, whose ID always has a path. */
function endpointSpiffeIdOk(id: string): boolean {
  try {
    return SpiffeId.parse(id).path !== '';
  } catch {
    return false;
  }
}

function bad(message: string, cause?: unknown): never {
  throw new TesseraError('TESSERA_ERR_DISCOVERY_BAD_UPDATE', message, {}, cause === undefined ? undefined : { cause });
}

/** Decimal integer text → bigint; anything else refuses the update. */
export function parseDiscoveryVersion(text: unknown): bigint {
  if (typeof text !== 'string' || !/^\d{1,30}$/.test(text)) bad(`version ${JSON.stringify(String(text).slice(0, 40))} is not a decimal integer`);
  return BigInt(text);
}

/**
 * The services of one update, each checked whole: a service name, at most MAX_ENDPOINTS_PER_SERVICE endpoints
 * each valid (endpointFromWire), no address twice, no service twice, at most MAX_UPDATE_SERVICES. Lists come sorted by
 * address so that equal sets compare equal whatever order the control plane sent.
 */
export function parseDiscoveryServices(msg: DiscoveryUpdateMsg): Map<string, EndpointList> {
  const services = Array.isArray(msg.services) ? msg.services : bad('services is not a list');
  if (services.length > MAX_UPDATE_SERVICES) bad(`${services.length} services in one update (at most ${MAX_UPDATE_SERVICES})`);
  const out = new Map<string, EndpointList>();
  for (const s of services) {
    const name = typeof s?.service === 'string' ? s.service : '';
    if (!isServiceName(name)) bad(`service name ${JSON.stringify(name.slice(0, 80))} is not [a-z0-9.-]+`);
    if (out.has(name)) bad(`service ${name} appears twice`);
    const wire = Array.isArray(s.endpoints) ? s.endpoints : bad(`service ${name}: endpoints is not a list`);
    if (wire.length > MAX_ENDPOINTS_PER_SERVICE) bad(`service ${name}: ${wire.length} endpoints (at most ${MAX_ENDPOINTS_PER_SERVICE})`);
    const byAddress = new Map<string, ServiceEndpoint>();
    for (const m of wire) {
      let e: ServiceEndpoint;
      try {
        e = endpointFromWire(m, endpointSpiffeIdOk);
      } catch (err) {
        bad(`service ${name}: ${(err as Error).message}`, err);
      }
      const address = endpointAddress(e);
      // The address is an endpoint's key in its service (balancer state, pools, leases).
      if (byAddress.has(address)) bad(`service ${name}: endpoint ${address} appears twice`);
      byAddress.set(address, Object.freeze(e));
    }
    out.set(name, Object.freeze([...byAddress.keys()].sort().map((a) => byAddress.get(a)!)));
  }
  return out;
}

function sameList(a: EndpointList, b: EndpointList): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!sameEndpoint(a[i]!, b[i]!)) return false;
  return true;
}

export interface ApplyResult {
  readonly version: string;
  /** Services whose endpoint list changed (listeners ran for them). */
  readonly changed: readonly string[];
  /** Services with endpoints the directory does not hold because the view is over MAX_SERVICES (0: none). */
  readonly leftOut: number;
}

export interface ServiceDirectoryOptions {
  /** A listener threw: reported here (it never undoes the update nor stops the other listeners). */
  readonly onListenerError?: (error: unknown, service: string) => void;
}

export class ServiceDirectory {
  readonly #onListenerError: (error: unknown, service: string) => void;
  #services = new Map<string, EndpointList>();
  #version: bigint | undefined;
  #refused = 0;
  /** Names with endpoints left out over the cap; they come in with a later full update once there is room. */
  #leftOut = new Set<string>();
  readonly #listeners = new Map<string, Set<ServiceListener>>();
  readonly #all = new Set<DirectoryListener>();

  constructor(opts: ServiceDirectoryOptions = {}) {
    this.#onListenerError = opts.onListenerError ?? (() => {});
  }

  /** The endpoints last known for `service`; undefined when the directory has never heard of it. */
  get(service: string): EndpointList | undefined {
    return this.#services.get(service);
  }

  names(): string[] {
    return [...this.#services.keys()];
  }

  /** The version of the last applied update (decimal text), undefined before the first. */
  get version(): string | undefined {
    return this.#version?.toString();
  }

  /** Services with endpoints left out of the directory over MAX_SERVICES, as of the last update. */
  get leftOut(): number {
    return this.#leftOut.size;
  }

  /** Updates refused so far (malformed, or older than the one applied). */
  get refused(): number {
    return this.#refused;
  }

  /** `fn` runs after each change of `service`'s endpoint list; returns the unsubscribe function. */
  subscribe(service: string, fn: ServiceListener): () => void {
    const set = this.#listeners.get(service) ?? new Set<ServiceListener>();
    this.#listeners.set(service, set);
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0 && this.#listeners.get(service) === set) this.#listeners.delete(service);
    };
  }

  /** `fn` runs after each change of any service (the forward-proxy listener); returns the unsubscribe function. */
  subscribeAll(fn: DirectoryListener): () => void {
    this.#all.add(fn);
    return () => this.#all.delete(fn);
  }

  /**
   * Validates the whole update, then swaps it in. A full update is the complete state of `watched`: a watched
   * service it does not carry has no endpoints now (and, when watching all, is forgotten). An incremental one
   * replaces only the services it carries. Services not watched are ignored; with `all`, a service whose list
   * becomes empty is forgotten; over MAX_SERVICES, the rest is left out and counted (never refused), so the directory
   * never holds more than MAX_SERVICES names. The version must not
   * go back (it may repeat: the same state again). `requireFull`: the
   * first update of a stream, which must be the complete state. `rebase`: a full update from another control-plane
   * replica, whose versions are its own: taken whatever its version. Throws
   * TESSERA_ERR_DISCOVERY_BAD_UPDATE, counted, with nothing changed.
   */
  apply(msg: DiscoveryUpdateMsg, watched: WatchedServices, opts: { readonly requireFull?: boolean; readonly rebase?: boolean } = {}): ApplyResult {
    let next: Map<string, EndpointList>;
    let leftOut: Set<string>;
    let version: bigint;
    try {
      if (opts.requireFull && msg.full !== true) bad('the first update of a stream is not full');
      version = parseDiscoveryVersion(msg.version);
      // The same version again is the same state (a reconnect, a merged flush): harmless. Older: never go back.
      if (this.#version !== undefined && version < this.#version && !(opts.rebase && msg.full === true)) bad(`version ${version} is older than the applied ${this.#version}`);
      ({ next, leftOut } = this.#merge(parseDiscoveryServices(msg), msg.full === true, watched));
    } catch (e) {
      this.#refused++;
      throw e;
    }
    const before = this.#services;
    const changed: string[] = [];
    for (const [name, list] of next) {
      const old = before.get(name);
      if (!old || !sameList(old, list)) changed.push(name);
    }
    for (const name of before.keys()) if (!next.has(name)) changed.push(name);
    this.#services = next;
    this.#leftOut = leftOut;
    this.#version = version;
    for (const name of changed) this.#notify(name, next.get(name));
    return { version: version.toString(), changed, leftOut: leftOut.size };
  }

  /** The state after the update (a new map; the current one is untouched until the swap), and what it left out. */
  #merge(incoming: Map<string, EndpointList>, full: boolean, watched: WatchedServices): { next: Map<string, EndpointList>; leftOut: Set<string> } {
    const wanted = (name: string) => watched.all || watched.services.has(name);
    let next = new Map<string, EndpointList>();
    const leftOut = full ? new Set<string>() : new Set(this.#leftOut);
    if (full) {
      if (!watched.all) for (const name of watched.services) next.set(name, EMPTY);
    } else {
      for (const [name, list] of this.#services) if (wanted(name)) next.set(name, list);
    }
    for (const [name, list] of incoming) {
      if (!wanted(name)) continue;
      leftOut.delete(name);
      if (watched.all && list.length === 0) next.delete(name);
      else next.set(name, list);
    }
    // Only `all` can pass the cap: the control plane refuses a named watch of more than 1,000.
    if (watched.all && next.size > MAX_SERVICES) next = this.#trim(next, watched.keep, leftOut);
    // Keep the same array for an unchanged list: readers comparing by identity see no change.
    for (const [name, list] of next) {
      const old = this.#services.get(name);
      if (old && old !== list && sameList(old, list)) next.set(name, old);
    }
    return { next, leftOut };
  }

  /**
   * The MAX_SERVICES services kept of `next`: the listeners' own first (a `service:` listener must not lose its
   * service to a flood of others), then those held already (a steady view, no churn at each snapshot), then by name.
   * The others go into `leftOut`.
   */
  #trim(next: Map<string, EndpointList>, keep: ReadonlySet<string> | undefined, leftOut: Set<string>): Map<string, EndpointList> {
    const rank = (name: string) => (keep?.has(name) ? 0 : this.#services.has(name) ? 1 : 2);
    const names = [...next.keys()].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
    const kept = new Map<string, EndpointList>();
    for (const name of names) {
      if (kept.size < MAX_SERVICES) kept.set(name, next.get(name)!);
      else if (leftOut.size < MAX_UPDATE_SERVICES) leftOut.add(name);
    }
    return kept;
  }

  #notify(name: string, list: EndpointList | undefined): void {
    const endpoints = list ?? EMPTY;
    const run = (call: () => void) => {
      try {
        call();
      } catch (e) {
        this.#onListenerError(e, name);
      }
    };
    for (const fn of this.#listeners.get(name) ?? []) run(() => fn(endpoints, name));
    for (const fn of this.#all) run(() => fn(name, list));
  }
}
