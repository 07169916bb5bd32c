// The control plane's service registry (DESIGN.md section 11): merges self-registrations (one session per Register
// call, kept for a grace after the call ends, persisted so a restart serves them unconfirmed until re-registered)
// with the views of the endpoint sources into service → endpoints, versioned, telling subscribers what changed.
import { randomUUID } from 'node:crypto';
import type { Clock } from '../../../common/clock.js';
import { endpointAddress, type ServiceEndpoint } from '../../../common/routing/service-endpoint.js';
import type { Timers } from '../../../shared-io/timers.js';
import type { SourceView } from './endpoint-source.js';

export interface Registration {
  readonly service: string;
  readonly endpoint: ServiceEndpoint;
}

/** A session as persisted: who registered what (the store's rows, grouped). */
export interface StoredSession {
  readonly id: string;
  readonly spiffeId: string;
  readonly registrations: readonly Registration[];
}

/** Where sessions survive a restart (control-plane/src/store/registration-store.ts). */
export interface RegistrationPersistence {
  save(session: StoredSession, atMs: number): void;
  remove(sessionId: string): void;
  loadAll(): StoredSession[];
}

export interface ServiceRegistryOptions {
  readonly clock: Clock;
  readonly timers: Timers;
  /** Persistent, monotonic counter: the next version (a restarted control plane never goes back). */
  readonly nextVersion: () => number;
  /** How long a session's registrations outlive its call, and restored ones a restart. */
  readonly graceMs: number;
  readonly persistence?: RegistrationPersistence;
  /** A persistence write failed: the registry goes on in memory. */
  readonly onPersistError?: (e: unknown) => void;
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
  removal: unknown;
}

type Subscriber = (changed: ReadonlySet<string>, version: number) => void;

// Which endpoint wins when two report the same address for a service: a live self-registration (the endpoint says
// so itself now), then the sources, then a self-registration that is only remembered.
const RANK = { live: 0, kubernetes: 1, static: 2, lingering: 3 } as const;

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

  constructor(opts: ServiceRegistryOptions) {
    this.#o = opts;
    this.#version = opts.nextVersion();
    // Registrations the previous process held are served, unconfirmed, until their owners register again.
    for (const s of this.#persisted(() => opts.persistence?.loadAll() ?? [])) {
      const session: Session = { id: s.id, spiffeId: s.spiffeId, seq: this.#seq++, registrations: s.registrations, live: false, removal: undefined };
      this.#sessions.set(s.id, session);
      this.#scheduleRemoval(session);
    }
    this.#recompute();
    this.#started = true;
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
    return {
      id: s.id,
      replace: (regs) => this.#replace(s, regs),
      close: () => this.#close(s),
    };
  }

  /** Stops the grace timers; what is persisted stays for the next process. */
  stop(): void {
    this.#stopped = true;
    for (const s of this.#sessions.values()) if (s.removal !== undefined) this.#o.timers.clearTimeout(s.removal);
    this.#subscribers.clear();
  }

  #replace(s: Session, regs: readonly Registration[]): void {
    if (this.#stopped || !this.#sessions.has(s.id)) return;
    s.registrations = regs.map((r) => ({ service: r.service, endpoint: { ...r.endpoint, source: 'self' } }));
    // The same caller registering the same endpoints again (a proxy back after a restart or a reconnect): the
    // remembered copies are superseded now rather than at the end of their grace.
    const mine = new Set(s.registrations.map((r) => regKey(r)));
    for (const other of this.#sessions.values()) {
      if (other.live || other.spiffeId !== s.spiffeId) continue;
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
    this.#persisted(() => this.#o.persistence?.remove(s.id));
  }

  #persist(s: Session): void {
    this.#persisted(() => this.#o.persistence?.save({ id: s.id, spiffeId: s.spiffeId, registrations: s.registrations }, this.#o.clock.nowMs()));
  }

  #persisted<T>(fn: () => T | undefined): T | never[] {
    try {
      return fn() ?? [];
    } catch (e) {
      this.#o.onPersistError?.(e);
      return [];
    }
  }

  /** Rebuilds service → endpoints; when any service changed, a new version and the subscribers are told which. */
  #recompute(): void {
    const best = new Map<string, Map<string, { rank: number; seq: number; e: EndpointView }>>();
    const offer = (service: string, e: ServiceEndpoint, rank: number, seq: number, confirmed: boolean) => {
      const m = best.get(service) ?? new Map<string, { rank: number; seq: number; e: EndpointView }>();
      best.set(service, m);
      const address = endpointAddress(e);
      const cur = m.get(address);
      if (cur && (cur.rank < rank || (cur.rank === rank && cur.seq <= seq))) return;
      m.set(address, { rank, seq, e: { ...e, address, confirmed } });
    };
    for (const s of this.#sessions.values()) {
      for (const r of s.registrations) offer(r.service, r.endpoint, s.live ? RANK.live : RANK.lingering, s.seq, s.live);
    }
    for (const [source, view] of this.#views) {
      for (const [service, eps] of view) for (const e of eps) offer(service, { ...e, source }, RANK[source], 0, true);
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
    // The first computation (in the constructor) is covered by the version taken there.
    if (this.#started) this.#version = this.#o.nextVersion();
    for (const fn of this.#subscribers) fn(changed, this.#version);
  }
}

/** Identifies a registration within its service: where the endpoint is. */
function regKey(r: Registration): string {
  return `${r.service} ${endpointAddress(r.endpoint)}`;
}
