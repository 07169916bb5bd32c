// The CA state machine (one writer): authorities go prepared → active → retired → removed. `prepare` adds a new
// authority to the bundle before it signs; `activate` makes it sign and retires the previous one; a retired
// authority is removed once no live SVID chains to it (on the tick, or by `retire`). Intermediates rotate at
// half-life. Every change is committed atomically, then published as one immutable snapshot.
// On a read-only store (a Kubernetes Secret shared by replicas) the roots are fixed: each replica mints its own
// intermediates in memory, signed by the root it reads, and rotates them; authority changes are refused.
// On a shared database any replica may change authorities (compare-and-swap: a replica that lost the race reloads
// and decides again), the leader alone does the periodic work, and the others follow commits through refresh().
// An authority whose root is offline (no root key here) never gets a minted intermediate: the operator installs
// one signed elsewhere (offline-root-plans.ts). With `rootMode: 'offline'` no root is ever made here, and a CA
// without an authority yet waits for the first installed intermediate (current() refuses until then).
import type { X509Certificate } from 'node:crypto';
import type { Clock } from '../../../common/clock.js';
import { TesseraError } from '../../../common/errors.js';
import { type KeyPair, privateKeyPem } from '../../../common/pki/keys.js';
import { encodePem } from '../../../common/pki/pem.js';
import { TrustBundle } from '../../../common/spiffe/trust-bundle.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import {
  type AuthorityRecord,
  CA_BACKDATE_MS,
  type CaLifetimes,
  type CaStateFile,
  type CertWithKey,
  createIntermediate,
  createRoot,
  type LoadedAuthority,
  newAuthorityId,
  type PendingIntermediateRecord,
  serialOf,
} from './authority.js';
import type { AuthorityPersistence, LoadedAuthorities, PersistenceMode } from './authority-persistence.js';
import type { MaterialFile } from './authority-store.js';
import { type CaEvent, intermediateMaterial, intermediateRecord, isConflict, type Plan, unchanged } from './ca-plan.js';
import { type ChainEndsWith, type ChainValidity, chainPastHalfLife, chainValidity, rootWarningFromMs } from './chain-end.js';
import { type LeafIssuer, leafIssuer } from './leaf-signer.js';
import { type InstalledIntermediate, type InstallRequest, type IntermediateRequest, installPlan, requestPlan } from './offline-root-plans.js';
import { signingIntermediate } from './signing-intermediate.js';

export type { CaEvent } from './ca-plan.js';

/** Live SVIDs an authority signed (from the inventory). */
export interface LiveSvids {
  readonly count: number;
  readonly latestNotAfterMs: number | null;
}

export interface SigningAuthority {
  readonly authorityId: string;
  readonly issuer: LeafIssuer;
  readonly intermediate: X509Certificate;
  /** The chain's validity (intermediate and root, chain-end.ts): nothing is issued outside it. */
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  /** Whose NotAfter notAfterMs is: the root's when it ends before the intermediate. */
  readonly endsWith: ChainEndsWith;
}

/** Immutable view of the CA, replaced whole on every change. */
export interface CaSnapshot {
  readonly generation: number;
  readonly authorities: readonly LoadedAuthority[];
  readonly signer: SigningAuthority;
  /**
   * The retired authorities' signing chains, oldest first: what the control plane's own SVID may still be signed by,
   * so that whoever trusted the bundle before a rotation can verify the control plane (issuance/self-signer.ts).
   * Empty on a read-only store, whose stored intermediates never sign.
   */
  readonly retiredSigners: readonly SigningAuthority[];
  /** Roots of every authority (prepared, active, retired): what a live SVID may chain to. */
  readonly bundle: TrustBundle;
}

export interface CaManagerOptions {
  readonly store: AuthorityPersistence;
  /** Shared store: whether this replica leads (does the periodic work). Absent: it always does. */
  readonly leads?: () => boolean;
  readonly trustDomain: TrustDomain;
  readonly lifetimes: CaLifetimes;
  /** `offline`: no root is ever created here (default `managed`: the first authority is made at open). */
  readonly rootMode?: 'managed' | 'offline';
  readonly clock: Clock;
  readonly liveSvids: (authorityId: string, nowMs: number) => Promise<LiveSvids>;
  /** Called after each committed change with the events it made. */
  readonly onChange?: (snapshot: CaSnapshot | undefined, events: readonly CaEvent[]) => void;
  /** Maintenance found an offline root's signing intermediate past half-life (a managed one would rotate now). */
  readonly onIntermediateDue?: (authorityId: string, intermediate: X509Certificate, chain: ChainValidity) => void;
  /** Maintenance found the signing authority's root near its end (chain-end.ts), or ending its chain past half-life; with the prepared successor if any. */
  readonly onRootDue?: (authorityId: string, root: X509Certificate, managed: boolean, prepared: string | null) => void;
}

const MAX_REMOVED_HISTORY = 20;
/** Tries of one mutation against commits from other replicas before TESSERA_ERR_CA_CONFLICT reaches the caller. */
const MAX_CONFLICT_ATTEMPTS = 5;

export class CaManager {
  readonly #o: CaManagerOptions;
  /** Undefined while an offline-root CA waits for its first intermediate. */
  #snapshot: CaSnapshot | undefined;
  #authorities: readonly LoadedAuthority[] = [];
  #generation = 0;
  #state!: CaStateFile;
  #pending: { readonly record: PendingIntermediateRecord; readonly key: KeyPair } | null = null;
  /** The committed version this replica's snapshot is built from (shared store). */
  #version: number | null = null;
  /** Serializes every mutation: the state machine has exactly one writer at a time. */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(opts: CaManagerOptions) {
    this.#o = opts;
  }

  /** Loads the CA from the store, creating the first active authority when there is none (unless the root is offline). */
  static async open(opts: CaManagerOptions): Promise<CaManager> {
    const m = new CaManager(opts);
    const loaded = await opts.store.load();
    if (loaded && loaded.authorities.length > 0) {
      m.#installLoaded(loaded, 1);
      // A replica never signs with the intermediate key the Secret shares: it mints its own before serving.
      if (opts.store.mode === 'fixed') await m.#mutate((now) => m.#rotationPlan(now, true));
      return m;
    }
    if (loaded) m.#installLoaded(loaded, 0);
    else m.#install({ version: 1, trustDomain: opts.trustDomain.name, authorities: [], removed: [] }, [], 0);
    if (opts.rootMode === 'offline') return m;
    await m.#mutate(async (now) => {
      // Replicas starting together on an empty database: one creates the CA, the others (reloaded) find it made.
      if (m.#authorities.length > 0) return unchanged(undefined);
      const fresh = await m.#newAuthority('active', now);
      return { records: [fresh.record], material: fresh.material, newAuthorities: [fresh.loaded], events: [{ event: 'ca.created', authority: fresh.record.id }], result: undefined };
    });
    return m;
  }

  /** Where the authorities are kept: owner (a writable dir), fixed (a read-only dir: a Secret) or shared (the database). */
  get persistence(): PersistenceMode {
    return this.#o.store.mode;
  }

  /** False while an offline-root CA waits for its first intermediate. */
  get ready(): boolean {
    return this.#snapshot !== undefined;
  }

  /** The pending intermediate request (`tessera ca intermediate-csr`), null when none is pending. */
  pendingRequest(): PendingIntermediateRecord | null {
    return this.#pending?.record ?? null;
  }

  current(): CaSnapshot {
    if (this.#snapshot) return this.#snapshot;
    throw new TesseraError('TESSERA_ERR_CA_NO_INTERMEDIATE', 'the root is offline and no intermediate is installed yet: run `tessera ca intermediate-csr`, have the root sign the request, then `tessera ca install-intermediate` (docs/offline-root.md)');
  }

  /** Recently removed authorities, oldest first. */
  removedHistory(): CaStateFile['removed'] {
    return this.#state.removed;
  }

  prepare(): Promise<AuthorityRecord> {
    return this.#mutate(async (now) => {
      if (this.#o.rootMode === 'offline') throw new TesseraError('TESSERA_ERR_CA_ROOT_OFFLINE', 'ca.root is offline: this control plane never makes a root; have the offline root sign a new intermediate (`tessera ca intermediate-csr`, then `tessera ca install-intermediate`)');
      if (this.#state.authorities.some((a) => a.state === 'prepared')) throw new TesseraError('TESSERA_ERR_CA_ALREADY_PREPARED');
      const fresh = await this.#newAuthority('prepared', now);
      return {
        records: [...this.#state.authorities, fresh.record],
        material: fresh.material,
        newAuthorities: [fresh.loaded],
        events: [{ event: 'ca.prepared', authority: fresh.record.id }],
        result: fresh.record,
      };
    });
  }

  /** Makes the prepared authority (or `id`) sign; the previously active one becomes retired. */
  activate(id?: string): Promise<AuthorityRecord> {
    return this.#mutate(async (now) => {
      const target = this.#state.authorities.find((a) => (id === undefined ? a.state === 'prepared' : a.id === id));
      if (!target) throw id === undefined ? new TesseraError('TESSERA_ERR_CA_NO_PREPARED') : new TesseraError('TESSERA_ERR_CA_UNKNOWN_AUTHORITY', `no authority "${id}"`);
      if (target.state !== 'prepared') throw new TesseraError('TESSERA_ERR_CA_NO_PREPARED', `authority ${target.id} is ${target.state}, not prepared`);
      const events: CaEvent[] = [];
      const records = this.#state.authorities.map((a): AuthorityRecord => {
        if (a.id === target.id) return { ...a, state: 'active', activatedAtMs: now };
        if (a.state === 'active') {
          events.push({ event: 'ca.retired', authority: a.id, detail: { successor: target.id } });
          return { ...a, state: 'retired', retiredAtMs: now };
        }
        return a;
      });
      events.unshift({ event: 'ca.activated', authority: target.id });
      return { records, events, result: records.find((a) => a.id === target.id)! };
    });
  }

  /**
   * Ends an authority: a retired one is removed from the bundle when no live SVID chains to it and it has been retired
   * for svid.maxTtl (`force`: without the latter) (refused otherwise); a prepared one (nothing signed by it) is
   * discarded. Without `id`: every retired authority.
   */
  retire(id?: string, force = false): Promise<string[]> {
    return this.#mutate(async (now) => {
      const targets = id === undefined ? this.#state.authorities.filter((a) => a.state === 'retired') : this.#state.authorities.filter((a) => a.id === id);
      if (id !== undefined && targets.length === 0) throw new TesseraError('TESSERA_ERR_CA_UNKNOWN_AUTHORITY', `no authority "${id}"`);
      for (const t of targets) {
        if (t.state === 'active') throw new TesseraError('TESSERA_ERR_CA_AUTHORITY_ACTIVE', `authority ${t.id} is active; prepare and activate its successor first`);
        // SVIDs it signed may live svid.maxTtl after its retirement, whatever the inventory knows of them (a control
        // plane over a writable copy of a Secret knows none): removed at once, they were refused (audit 62k F4).
        const settledAtMs = (t.retiredAtMs ?? 0) + (this.#o.lifetimes.svidMaxTtlMs ?? 0);
        if (t.state === 'retired' && !force && now < settledAtMs) {
          throw new TesseraError('TESSERA_ERR_CA_AUTHORITY_IN_USE', `authority ${t.id} was retired at ${new Date(t.retiredAtMs ?? 0).toISOString()}: SVIDs it signed may live until ${new Date(settledAtMs).toISOString()} (svid.maxTtl), known to this control plane or not; retire it then, or now with --force`, { settledAtMs });
        }
        const live = await this.#o.liveSvids(t.id, now);
        if (t.state === 'retired' && live.count > 0) {
          throw new TesseraError(
            'TESSERA_ERR_CA_AUTHORITY_IN_USE',
            `authority ${t.id} still has ${live.count} live SVID(s); the last expires ${new Date(live.latestNotAfterMs ?? now).toISOString()}`,
            { count: live.count, latestNotAfterMs: live.latestNotAfterMs },
          );
        }
      }
      const gone = new Set(targets.map((t) => t.id));
      return {
        records: this.#state.authorities.filter((a) => !gone.has(a.id)),
        removed: [...gone],
        events: [...gone].map((a) => ({ event: 'ca.removed' as const, authority: a })),
        result: [...gone],
      };
    });
  }

  /** Offline root: a CSR for a new intermediate key, kept as the pending request; the same key again unless `fresh`. */
  requestIntermediate(fresh = false): Promise<IntermediateRequest> {
    return this.#mutate((now) => requestPlan(this.#offlineView(), now, fresh));
  }

  /** Offline root: the certificate the root holder signed for the pending request, checked, then installed. */
  async installIntermediate(req: InstallRequest): Promise<InstalledIntermediate> {
    const done = await this.#mutate((now) => installPlan(this.#offlineView(), req, now));
    if (!req.activate || done.state !== 'prepared') return done;
    await this.activate(done.authority);
    return { ...done, state: 'active' };
  }

  /** The periodic work: rotate intermediates at half-life, prune expired ones, remove unused retired authorities. */
  maintain(): Promise<readonly CaEvent[]> {
    const now = this.#o.clock.nowMs();
    const prepared = this.#authorities.find((a) => a.record.state === 'prepared');
    for (const a of this.#authorities) {
      if (a.record.state === 'retired') continue;
      const cur = signingIntermediate(a, now).cert;
      const chain = chainValidity(cur, a.root.cert);
      const halfGone = chainPastHalfLife(cur, chain, now);
      // An offline root's intermediate cannot rotate here: say so from the point a managed one would have — unless
      // its root ends the chain first, which no intermediate of that root can help (a new root can: below).
      if (a.root.key === null && chain.endsWith === 'intermediate' && halfGone) this.#o.onIntermediateDue?.(a.record.id, cur, chain);
      // No root is replaced by itself, managed or offline: the signing one is warned about before it ends, and from
      // half the chain's life when it is the root that ends the chain.
      if (a.record.state === 'active' && (now >= rootWarningFromMs(a.root.cert) || (chain.endsWith === 'root' && halfGone))) {
        this.#o.onRootDue?.(a.record.id, a.root.cert, a.root.key !== null, prepared?.record.id ?? null);
      }
    }
    return this.#mutate((now) => this.#rotationPlan(now, false));
  }

  #offlineView() {
    return { trustDomain: this.#o.trustDomain, authorities: this.#authorities, pending: this.#pending };
  }

  /** Shared store: installs what another replica committed (no-op when nothing changed). True when it changed. */
  refresh(): Promise<boolean> {
    const run = this.#queue.then(() => this.#reload());
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #reload(): Promise<boolean> {
    // Only a shared database has commits from elsewhere; a directory is this process's alone (or fixed).
    if (this.#o.store.mode !== 'shared') return false;
    if ((await this.#o.store.version?.()) === this.#version) return false;
    const loaded = await this.#o.store.load();
    if (!loaded || loaded.version === this.#version) return false;
    this.#installLoaded(loaded, this.#generation + 1);
    this.#o.onChange?.(this.#snapshot, []);
    return true;
  }

  #installLoaded(loaded: LoadedAuthorities, generation: number): void {
    if (loaded.state.trustDomain !== this.#o.trustDomain.name) {
      throw new TesseraError('TESSERA_ERR_CA_STATE_CORRUPT', `the CA in ${this.#o.store.where} is for trust domain "${loaded.state.trustDomain}", not "${this.#o.trustDomain.name}"`);
    }
    this.#install(loaded.state, loaded.authorities, generation);
    const pending = loaded.state.pendingIntermediate;
    this.#pending = pending && loaded.pendingKey ? { record: pending, key: loaded.pendingKey } : null;
    this.#version = loaded.version;
  }

  /**
   * Writable store: rotate at half-life, prune, remove retired authorities nothing chains to (and none could: retired
   * for svid.maxTtl at least). Read-only store:
   * only the replica's own in-memory intermediates change (`force`: a fresh one now); the authorities are the
   * Secret's and change only when the Secret does.
   */
  async #rotationPlan(now: number, force: boolean): Promise<Plan<readonly CaEvent[]>> {
    const inMemory = this.#o.store.mode === 'fixed';
    const shared = this.#o.store.mode === 'shared';
    // Periodic work on a shared CA is the leader's: the others would only race it.
    if (shared && !(this.#o.leads?.() ?? true)) return unchanged([]);
    const events: CaEvent[] = [];
    const material: MaterialFile[] = [];
    const newIntermediates: [string, CertWithKey][] = [];
    const removed: string[] = [];
    const records: AuthorityRecord[] = [];
    for (const a of this.#state.authorities) {
      const settled = now >= (a.retiredAtMs ?? 0) + (this.#o.lifetimes.svidMaxTtlMs ?? 0);
      if (!inMemory && a.state === 'retired' && settled && (await this.#o.liveSvids(a.id, now)).count === 0) {
        removed.push(a.id);
        events.push({ event: 'ca.removed', authority: a.id, detail: { automatic: true } });
        continue;
      }
      let rec = a;
      const last = a.intermediates[a.intermediates.length - 1]!;
      const rootKey = this.#loaded(a.id).root.key;
      // An offline root's intermediates come from its holder (installIntermediate), never from here.
      if (rootKey !== null && a.state !== 'retired' && ((force && a.state === 'active') || this.#needsRotation(a, now))) {
        const next = await createIntermediate(this.#o.trustDomain, a.id, { cert: this.#loaded(a.id).root.cert, key: rootKey }, now, this.#o.lifetimes.intermediateTtlMs);
        const ir = intermediateRecord(a.id, next.cert);
        rec = { ...rec, intermediates: [...rec.intermediates, ir] };
        material.push(...intermediateMaterial(ir, next));
        newIntermediates.push([a.id, next]);
        events.push({ event: 'ca.intermediate_rotated', authority: a.id, detail: { previous: last.serial, serial: ir.serial, notAfterMs: ir.notAfterMs, ...(inMemory ? { inMemory: true } : {}) } });
      }
      // Expired intermediates can sign nothing and verify nothing live: drop them, keeping the newest when none is live.
      const live = rec.intermediates.filter((i) => i.notAfterMs > now);
      const kept = live.length > 0 ? live : rec.intermediates.slice(-1);
      if (kept.length !== rec.intermediates.length) rec = { ...rec, intermediates: kept };
      records.push(rec);
    }
    if (events.length === 0 && records.every((r, n) => r === this.#state.authorities[n])) return unchanged([]);
    return { records, material, newIntermediates, removed, events, result: events, inMemory, fenced: shared };
  }

  #needsRotation(a: AuthorityRecord, now: number): boolean {
    const cur = signingIntermediate(this.#loaded(a.id), now).cert;
    // Half-life counts from when it was made, not from its backdated notBefore (which would halve short lifetimes).
    const from = cur.validFromDate.getTime() + CA_BACKDATE_MS;
    const to = cur.validToDate.getTime();
    if (now < from + (to - from) / 2) return false;
    // A successor capped by the root's expiry would not outlive this one: rotating would only shorten it.
    return Math.min(now + this.#o.lifetimes.intermediateTtlMs, a.rootNotAfterMs) > to + 1000;
  }

  #loaded(id: string): LoadedAuthority {
    return this.#authorities.find((a) => a.record.id === id)!;
  }

  async #newAuthority(state: 'prepared' | 'active', now: number): Promise<{ record: AuthorityRecord; loaded: LoadedAuthority; material: MaterialFile[] }> {
    const td = this.#o.trustDomain;
    const id = newAuthorityId();
    const root = await createRoot(td, id, now, this.#o.lifetimes.rootTtlMs);
    const inter = await createIntermediate(td, id, root, now, this.#o.lifetimes.intermediateTtlMs);
    const ir = intermediateRecord(id, inter.cert);
    const record: AuthorityRecord = {
      id,
      state,
      createdAtMs: now,
      ...(state === 'active' ? { activatedAtMs: now } : {}),
      rootCertFile: `${id}-root.crt`,
      rootKeyFile: `${id}-root.key`,
      rootNotAfterMs: root.cert.validToDate.getTime(),
      intermediates: [ir],
    };
    const material: MaterialFile[] = [
      { name: `${id}-root.key`, text: privateKeyPem(root.key), secret: true },
      { name: record.rootCertFile, text: encodePem('CERTIFICATE', root.cert.raw), secret: false },
      ...intermediateMaterial(ir, inter),
    ];
    return { record, loaded: { record, root, intermediates: [inter] }, material };
  }

  #mutate<T>(plan: (now: number) => Promise<Plan<T>>): Promise<T> {
    const run = this.#queue.then(async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.#apply(plan);
        } catch (e) {
          if (!isConflict(e) || attempt >= MAX_CONFLICT_ATTEMPTS) throw e;
          // Another replica committed first (or took the lead): take its state, then decide again against it. More
          // than once: a replica that was behind can lose a second race to a writer that committed after its reload.
          await this.#reload();
        }
      }
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #apply<T>(plan: (now: number) => Promise<Plan<T>>): Promise<T> {
    const now = this.#o.clock.nowMs();
    const p = await plan(now);
    if (p.records === null) return p.result;
    const history = [...this.#state.removed, ...(p.removed ?? []).map((id) => ({ id, removedAtMs: now }))].slice(-MAX_REMOVED_HISTORY);
    const pending = p.pending === undefined ? this.#pending : p.pending;
    const { pendingIntermediate: _was, ...rest } = this.#state;
    const state: CaStateFile = { ...rest, authorities: p.records, removed: history, ...(pending ? { pendingIntermediate: pending.record } : {}) };
    if (!p.inMemory) this.#version = await this.#o.store.commit(state, p.material ?? [], this.#version, p.fenced ?? false);
    this.#pending = pending;
    // Rebuild the loaded view from what is now committed: new material from memory, the rest reused.
    const fresh = new Map((p.newAuthorities ?? []).map((a) => [a.record.id, a]));
    const loaded = p.records.map((r): LoadedAuthority => {
      const base = fresh.get(r.id) ?? this.#loaded(r.id);
      const extra = (p.newIntermediates ?? []).filter(([id]) => id === r.id).map(([, c]) => c);
      const bySerial = new Map([...base.intermediates, ...extra].map((c) => [serialOf(c.cert), c]));
      return { record: r, root: base.root, intermediates: r.intermediates.map((i) => bySerial.get(i.serial)!) };
    });
    this.#install(state, loaded, this.#generation + 1);
    if (p.events.length > 0) this.#o.onChange?.(this.#snapshot, p.events);
    return p.result;
  }

  #install(state: CaStateFile, authorities: readonly LoadedAuthority[], generation: number): void {
    this.#state = state;
    this.#authorities = Object.freeze([...authorities]);
    this.#generation = generation;
    // No authority yet (an offline root's first intermediate is awaited): nothing to sign with, nothing to trust.
    if (authorities.length === 0) {
      this.#snapshot = undefined;
      return;
    }
    const active = authorities.filter((a) => a.record.state === 'active');
    if (active.length !== 1) throw new TesseraError('TESSERA_ERR_CA_STATE_CORRUPT', `the CA has ${active.length} active authorities (exactly one is needed)`);
    if (authorities.filter((a) => a.record.state === 'prepared').length > 1) throw new TesseraError('TESSERA_ERR_CA_STATE_CORRUPT', 'the CA has more than one prepared authority');
    const retired = this.#o.store.mode === 'fixed' ? [] : authorities.filter((a) => a.record.state === 'retired').sort((x, y) => x.record.createdAtMs - y.record.createdAtMs);
    this.#snapshot = Object.freeze({
      generation,
      authorities: this.#authorities,
      signer: signingAuthority(active[0]!, this.#o.clock.nowMs()),
      retiredSigners: retired.map((r) => signingAuthority(r, this.#o.clock.nowMs())),
      bundle: new TrustBundle(this.#o.trustDomain, authorities.map((x) => x.root.cert)),
    });
  }
}

/** An authority's signing intermediate at `nowMs` (signing-intermediate.ts), ready to sign leaves. */
function signingAuthority(a: LoadedAuthority, nowMs: number): SigningAuthority {
  const inter = signingIntermediate(a, nowMs);
  // The chain's end, not the intermediate's own: an intermediate installed before it was refused may outlive its root.
  return { authorityId: a.record.id, issuer: leafIssuer(inter.cert, inter.key.privateKey), intermediate: inter.cert, ...chainValidity(inter.cert, a.root.cert) };
}
