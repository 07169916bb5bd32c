// The control plane's service registry (DESIGN.md section 11): merges self-registrations (one session per Register
// call, kept for a grace after the call ends, persisted so a restart serves them unconfirmed until re-registered)
// with the views of the endpoint sources into service → endpoints, versioned, telling subscribers what changed.
// Versions come from the store's counter one at a time (subscribers hear a change once its version is known);
// store writes are queued in order and never block the registry. Several registries (control-plane replicas) may
// share one store: each owns the sessions of its own calls and heartbeats them; sessions stored by others (or by
// this replica's previous process) are served as remembered (unconfirmed), never written or expired here, and go
// once their heartbeat lapses — swept from the store by whichever registry sees it first.
import { randomUUID } from 'node:crypto';
import type { Clock } from '../../../common/clock.js';
import { endpointAddress, type ServiceEndpoint } from '../../../common/routing/service-endpoint.js';
import type { Timers } from '../../../shared-io/timers.js';
import type { SourceView } from './endpoint-source.js';
import { type Offer, RANK, takesOver } from './endpoint-merge.js';
import type { MayServe } from './service-identities.js';
import type { LoadedSession, Registration, RegistrationPersistence, StoredSession } from './registration-session.js';

export type { LoadedSession, Registration, RegistrationPersistence, StoredSession } from './registration-session.js';

/** The shortest heartbeat period, whatever the grace (a grace of 0 would otherwise mean a busy loop). */
export const MIN_HEARTBEAT_MS = 250;

export interface ServiceRegistryOptions {
  readonly clock: Clock;
  readonly timers: Timers;
  /** Persistent, monotonic counter: the next version (a restarted control plane never goes back). */
  readonly nextVersion: () => Promise<number>;
  /** How long a session's registrations outlive its call, and a stored session its owner's last heartbeat. */
  readonly graceMs: number;
  /** This registry's name in the store (the replica's, e.g. `<host name>/<pid>`): owner of the sessions it writes. */
  readonly owner: string;
  /** Stored sessions are served this long after serving() and swept once their heartbeat is older (default: the grace; rememberedForMs). */
  readonly rememberMs?: number;
  /** How often the owned sessions' heartbeat is written (default: a third of the grace, at least MIN_HEARTBEAT_MS). */
  readonly heartbeatMs?: number;
  readonly persistence?: RegistrationPersistence;
  /**
   * Which services an ID may serve: a stored registration the rule does not allow (another replica's, or one kept
   * from before the rule changed) is not served. Absent: every registration is.
   */
  readonly mayServe?: MayServe;
  /** A persistence read or write failed: the registry goes on in memory. */
  readonly onPersistError?: (e: unknown) => void;
  /** A save, remove or sweep changed what is stored (so other replicas may be told). */
  readonly onPersisted?: () => void;
  /** No new version could be had (the change goes out under the current one: proxies take an equal version), or a subscriber threw. */
  readonly onVersionError?: (e: unknown) => void;
}

/** One endpoint as the admin view shows it. */
export interface EndpointView extends ServiceEndpoint {
  readonly address: string;
  /** False: a self-registration restored after a restart (or whose call ended), not yet registered again. */
  readonly confirmed: boolean;
}

export interface RegistrationSession {
  readonly id: string;
  /** The caller's complete set now: what is missing from it is withdrawn. */
  replace(registrations: readonly Registration[]): void;
  /** The call ended: its registrations go after the grace unless the same caller registers them again. */
  close(): void;
}

interface Session {
  readonly id: string;
  readonly spiffeId: string;
  /** Monotonic, so among equals the earliest registration wins. */
  readonly seq: number;
  registrations: readonly Registration[];
  live: boolean;
  /** Stored by another registry (or this replica's previous process): served as remembered, never written, expired or taken over here. */
  readonly foreign?: boolean;
  removal: unknown;
}

type Subscriber = (changed: ReadonlySet<string>, version: number) => void;

export class ServiceRegistry {
  readonly #o: ServiceRegistryOptions;
  readonly #sessions = new Map<string, Session>();
  readonly #views = new Map<'kubernetes' | 'static', SourceView>();
  readonly #subscribers = new Set<Subscriber>();
  #merged = new Map<string, readonly EndpointView[]>();
  #keys = new Map<string, string>();
  #version: number;
  #seq = 0;
  #stopped = false;
  #started = false;
  /** Ids of the sessions this registry made, even once forgotten: never taken for another replica's. */
  readonly #mine = new Set<string>();
  readonly #heartbeatMs: number;
  /** How old a stored session's heartbeat may get before any registry sweeps it. */
  readonly #lapseMs: number;
  #heartbeat: unknown;
  #firstSweep: unknown;
  /** Set a lapse after start: from then on every tick sweeps. */
  #sweeping = false;
  #versioning: Promise<void> = Promise.resolve();
  #persisting: Promise<void> = Promise.resolve();
  #persistPending = 0;
  #reloading: Promise<void> = Promise.resolve();

  private constructor(opts: ServiceRegistryOptions, version: number, restored: readonly LoadedSession[]) {
    this.#o = opts;
    this.#version = version;
    this.#heartbeatMs = opts.heartbeatMs ?? Math.max(MIN_HEARTBEAT_MS, Math.floor(opts.graceMs / 3));
    // Three missed heartbeats at least, so a write that is merely slow never makes a live session look dead.
    this.#lapseMs = Math.max(opts.graceMs, 3 * this.#heartbeatMs, opts.rememberMs ?? 0);
    // Nothing is adopted: what is stored (other replicas', this replica's previous process's) is served, unconfirmed,
    // until its proxies register again or its heartbeat lapses.
    this.#applyStored(restored);
    this.#recompute();
    this.#started = true;
    if (!opts.persistence) return;
    this.#heartbeat = opts.timers.setInterval(() => this.#tick(), this.#heartbeatMs);
    // What was stored before this start is served for a lapse at least (a restarted single control plane keeps
    // serving what it held while its proxies reconnect), then swept if nobody heartbeats it; serving() restarts
    // the wait once proxies can reach this replica.
    this.serving();
  }

  /** The control plane is serving (proxies can reconnect from now): what is remembered is kept a lapse from now. */
  serving(): void {
    if (this.#stopped || this.#sweeping || !this.#o.persistence) return;
    if (this.#firstSweep !== undefined) this.#o.timers.clearTimeout(this.#firstSweep);
    this.#firstSweep = this.#o.timers.setTimeout(() => {
      this.#firstSweep = undefined;
      this.#sweeping = true;
      this.#tick();
    }, this.#lapseMs);
  }

  /** Takes the first version and what the store remembers (a failed read is reported; the registry starts empty). */
  static async open(opts: ServiceRegistryOptions): Promise<ServiceRegistry> {
    const version = await opts.nextVersion();
    let restored: LoadedSession[] = [];
    try {
      restored = (await opts.persistence?.loadAll()) ?? [];
    } catch (e) {
      opts.onPersistError?.(e);
    }
    return new ServiceRegistry(opts, version, restored);
  }

  get version(): number {
    return this.#version;
  }

  /** Names of the services that have endpoints now, sorted. */
  services(): string[] {
    return [...this.#merged.keys()].sort();
  }

  /** The service's endpoints now, sorted by address (empty: none). */
  endpoints(service: string): readonly EndpointView[] {
    return this.#merged.get(service) ?? [];
  }

  /** How many registrations `spiffeId` holds in sessions other than `exceptSession` (live or in their grace). */
  heldBy(spiffeId: string, exceptSession: string): number {
    let n = 0;
    for (const s of this.#sessions.values()) if (s.spiffeId === spiffeId && s.id !== exceptSession) n += s.registrations.length;
    return n;
  }

  /** The service names `spiffeId` holds in sessions other than `exceptSession` (live or in their grace). */
  namesHeldBy(spiffeId: string, exceptSession: string): Set<string> {
    const names = new Set<string>();
    for (const s of this.#sessions.values()) if (s.spiffeId === spiffeId && s.id !== exceptSession) for (const r of s.registrations) names.add(r.service);
    return names;
  }

  /** How many services have endpoints now. */
  get size(): number {
    return this.#merged.size;
  }

  /** Every service with its endpoints (the admin view). */
  snapshot(): Record<string, readonly EndpointView[]> {
    return Object.fromEntries(this.services().map((s) => [s, this.endpoints(s)]));
  }

  /** Endpoint counts by service and source (for the gauge). */
  counts(): { service: string; source: string; count: number }[] {
    const out: { service: string; source: string; count: number }[] = [];
    for (const [service, eps] of this.#merged) {
      const by = new Map<string, number>();
      for (const e of eps) by.set(e.source, (by.get(e.source) ?? 0) + 1);
      for (const [source, count] of by) out.push({ service, source, count });
    }
    return out;
  }

  /** `fn` hears, after each change, the names of the services whose endpoints changed and the new version. */
  subscribe(fn: Subscriber): () => void {
    this.#subscribers.add(fn);
    return () => this.#subscribers.delete(fn);
  }

  /** A source's complete view now (replaces its previous one). */
  setSourceView(source: 'kubernetes' | 'static', view: SourceView): void {
    this.#views.set(source, view);
    this.#recompute();
  }

  /** A Register call by `spiffeId` (already proven): its registrations live while it does. */
  openSession(spiffeId: string): RegistrationSession {
    const s: Session = { id: randomUUID(), spiffeId, seq: this.#seq++, registrations: [], live: true, removal: undefined };
    this.#sessions.set(s.id, s);
    this.#mine.add(s.id);
    return {
      id: s.id,
      replace: (regs) => this.#replace(s, regs),
      close: () => this.#close(s),
    };
  }

  /** Stops the grace timers and the heartbeat; what is persisted stays until its heartbeat lapses. */
  stop(): void {
    this.#stopped = true;
    for (const s of this.#sessions.values()) if (s.removal !== undefined) this.#o.timers.clearTimeout(s.removal);
    if (this.#heartbeat !== undefined) this.#o.timers.clearInterval(this.#heartbeat);
    if (this.#firstSweep !== undefined) this.#o.timers.clearTimeout(this.#firstSweep);
    this.#heartbeat = this.#firstSweep = undefined;
    this.#subscribers.clear();
  }

  /** Resolves once queued store writes, version requests and reloads have finished, those they queued included. */
  async settled(): Promise<void> {
    for (;;) {
      const pending = [this.#persisting, this.#versioning, this.#reloading];
      await Promise.all(pending);
      if (pending[0] === this.#persisting && pending[1] === this.#versioning && pending[2] === this.#reloading) return;
    }
  }

  /**
   * Another replica changed what it stores: its sessions are served as they are stored now (remembered, never
   * confirmed here); one it no longer stores goes. A failed read is reported and changes nothing.
   */
  reloadStored(): Promise<void> {
    const next = this.#reloading.then(() => this.#reloadStored()).catch((e: unknown) => this.#o.onPersistError?.(e));
    this.#reloading = next;
    return next;
  }

  async #reloadStored(): Promise<void> {
    const persistence = this.#o.persistence;
    if (!persistence || this.#stopped) return;
    // Only with none of this registry's writes in flight does the read show all of them: then forgotten ids of its
    // own that are no longer stored can be dropped from #mine.
    const quiet = this.#persistPending === 0;
    const stored = await persistence.loadAll();
    if (this.#stopped) return;
    if (quiet && this.#persistPending === 0) {
      const storedIds = new Set(stored.map((s) => s.id));
      for (const id of this.#mine) if (!this.#sessions.has(id) && !storedIds.has(id)) this.#mine.delete(id);
    }
    if (this.#applyStored(stored)) this.#recompute();
  }

  /** Serves what others stored as it is stored now (a foreign session no longer stored goes); true when anything changed. */
  #applyStored(stored: readonly LoadedSession[]): boolean {
    const storedIds = new Set(stored.map((s) => s.id));
    let changed = false;
    for (const s of stored) {
      if (this.#mine.has(s.id)) continue;
      const cur = this.#sessions.get(s.id);
      if (cur && JSON.stringify(cur.registrations) === JSON.stringify(s.registrations)) continue;
      this.#sessions.set(s.id, { id: s.id, spiffeId: s.spiffeId, seq: cur?.seq ?? this.#seq++, registrations: s.registrations, live: false, foreign: true, removal: undefined });
      changed = true;
    }
    for (const s of [...this.#sessions.values()]) {
      if (s.foreign && !storedIds.has(s.id)) {
        this.#sessions.delete(s.id);
        changed = true;
      }
    }
    return changed;
  }

  /**
   * Every heartbeat period: one write refreshes the heartbeat of the sessions this registry owns (one swept
   * meanwhile, while the store was out of reach, is stored again); then, from a lapse after start on, stored
   * sessions whose heartbeat lapsed are swept. The sweep runs only after a heartbeat that landed, so it never
   * removes this registry's own.
   */
  #tick(): void {
    if (this.#stopped) return;
    const sweep = this.#sweeping;
    // Listed now: a session whose first save is still queued behind this write is not missing.
    const owned = [...this.#sessions.values()].filter((s) => !s.foreign && s.registrations.length > 0).map((s) => s.id);
    this.#persisted(async (p) => {
      if (owned.length > 0) {
        const found = new Set(await p.heartbeat(this.#o.owner, owned, this.#o.clock.nowMs()));
        for (const id of owned) {
          const s = this.#sessions.get(id);
          if (!found.has(id) && s && s.registrations.length > 0 && !this.#stopped) this.#persist(s);
        }
      }
      if (!sweep) return false;
      const removed = await p.removeStale(this.#o.clock.nowMs() - this.#lapseMs);
      if (removed > 0 && !this.#stopped) void this.reloadStored();
      return removed > 0;
    });
  }

  #replace(s: Session, regs: readonly Registration[]): void {
    if (this.#stopped || !this.#sessions.has(s.id)) return;
    s.registrations = regs.map((r) => ({ service: r.service, endpoint: { ...r.endpoint, source: 'self' } }));
    // The same caller registering the same endpoints again (a proxy back after a reconnect): the remembered copies
    // this registry owns are superseded now rather than at the end of their grace; others' are only outranked.
    const mine = new Set(s.registrations.map((r) => regKey(r)));
    for (const other of this.#sessions.values()) {
      if (other.live || other.foreign || other.spiffeId !== s.spiffeId) continue;
      const left = other.registrations.filter((r) => !mine.has(regKey(r)));
      if (left.length === other.registrations.length) continue;
      other.registrations = left;
      if (left.length === 0) this.#forget(other);
      else this.#persist(other);
    }
    this.#persist(s);
    this.#recompute();
  }

  #close(s: Session): void {
    if (this.#stopped || !s.live) return;
    s.live = false;
    if (s.registrations.length === 0) this.#forget(s);
    else this.#scheduleRemoval(s);
    this.#recompute();
  }

  #scheduleRemoval(s: Session): void {
    s.removal = this.#o.timers.setTimeout(() => {
      s.removal = undefined;
      if (this.#stopped || !this.#sessions.has(s.id)) return;
      this.#forget(s);
      this.#recompute();
    }, this.#o.graceMs);
  }

  #forget(s: Session): void {
    if (s.removal !== undefined) this.#o.timers.clearTimeout(s.removal);
    this.#sessions.delete(s.id);
    this.#persisted((p) => p.remove(s.id).then(() => true));
  }

  #persist(s: Session): void {
    const stored: StoredSession = { id: s.id, spiffeId: s.spiffeId, registrations: s.registrations };
    const atMs = this.#o.clock.nowMs();
    this.#persisted((p) => p.save(stored, atMs, this.#o.owner).then(() => true));
  }

  /**
   * Queues a store write behind the earlier ones (so a save and a remove of one session land in order); `op`
   * resolves true when it changed what others read (they are told), false for a heartbeat.
   */
  #persisted(op: (p: RegistrationPersistence) => Promise<boolean>): void {
    const p = this.#o.persistence;
    if (!p) return;
    this.#persistPending++;
    // Counted down before the callbacks: a reload the announcement triggers sees this write as landed.
    this.#persisting = this.#persisting
      .then(() => op(p))
      .then(
        (changed) => {
          this.#persistPending--;
          if (changed) this.#o.onPersisted?.();
        },
        (e: unknown) => {
          this.#persistPending--;
          this.#o.onPersistError?.(e);
        },
      );
  }

  /** A new version for a change, then the subscribers hear it: one at a time, so versions reach them in order. */
  #announce(changed: ReadonlySet<string>): void {
    this.#versioning = this.#versioning.then(async () => {
      try {
        this.#version = await this.#o.nextVersion();
      } catch (e) {
        this.#o.onVersionError?.(e);
      }
      for (const fn of this.#subscribers) fn(changed, this.#version);
    }).catch((e: unknown) => this.#o.onVersionError?.(e));
  }

  /** Rebuilds service → endpoints; when any service changed, a new version and the subscribers are told which. */
  #recompute(): void {
    const best = new Map<string, Map<string, Offer<EndpointView>>>();
    const offer = (service: string, e: ServiceEndpoint, rank: number, seq: number, confirmed: boolean, fromSource: boolean) => {
      const m = best.get(service) ?? new Map<string, Offer<EndpointView>>();
      best.set(service, m);
      const address = endpointAddress(e);
      const next: Offer<EndpointView> = { rank, seq, fromSource, e: { ...e, address, confirmed } };
      const cur = m.get(address);
      if (!cur || takesOver(cur, next)) m.set(address, next);
    };
    const mayServe = this.#o.mayServe;
    for (const s of this.#sessions.values()) {
      for (const r of s.registrations) {
        if (mayServe && !mayServe(r.service, r.endpoint.spiffeId)) continue;
        offer(r.service, r.endpoint, s.live ? RANK.live : RANK.lingering, s.seq, s.live, false);
      }
    }
    for (const [source, view] of this.#views) {
      for (const [service, eps] of view) for (const e of eps) offer(service, { ...e, source }, RANK[source], 0, true, true);
    }
    const merged = new Map<string, readonly EndpointView[]>();
    const keys = new Map<string, string>();
    for (const [service, m] of best) {
      const eps = [...m.values()].map((x) => x.e).sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
      merged.set(service, Object.freeze(eps));
      keys.set(service, JSON.stringify(eps));
    }
    const changed = new Set<string>();
    for (const [service, key] of keys) if (this.#keys.get(service) !== key) changed.add(service);
    for (const service of this.#keys.keys()) if (!keys.has(service)) changed.add(service);
    this.#merged = merged;
    this.#keys = keys;
    if (changed.size === 0) return;
    // The first computation (in the constructor) is covered by the version taken in open().
    if (this.#started) this.#announce(changed);
  }
}

/** Identifies a registration within its service: where the endpoint is. */
function regKey(r: Registration): string {
  return `${r.service} ${endpointAddress(r.endpoint)}`;
}
