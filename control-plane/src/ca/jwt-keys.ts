// The control plane's JWT-SVID signing keys (ES256, P-256): one active key signs; on rotation it is retired and
// stays published until every token it signed has expired, then it is removed. Kept by a backend: the data dir's
// jwt/ files, or the database replicas share (there any replica creates the first key, the leader alone rotates and
// removes, and the others follow the committed list through refresh()).
import { type KeyObject, createPublicKey, generateKeyPairSync } from 'node:crypto';
import type { Clock } from '../../../common/clock.js';
import { TesseraError } from '../../../common/errors.js';
import type { JwtAuthority } from '../../../common/spiffe/spiffe-bundle.js';
import { type JwtKeyBackend, type JwtKeyRecord, jwkThumbprint, type LoadedJwtKeys } from './jwt-key-backend.js';

export { jwkThumbprint } from './jwt-key-backend.js';

export interface JwtSigningKey extends JwtAuthority {
  readonly privateKey: KeyObject;
}

/** What signs JWT-SVIDs and what validators are given: kept keys (here) or keys derived from a read-only CA. */
export interface JwtKeySet {
  /** The key that signs now. */
  active(): JwtSigningKey;
  /** Every key a live token may name. */
  published(): JwtAuthority[];
}

export interface JwtKeyOptions {
  readonly backend: JwtKeyBackend;
  readonly clock: Clock;
  /** The active key is replaced after this long. */
  readonly rotateEveryMs: number;
  /** The longest a JWT-SVID lives (plus validators' skew): how long a retired key stays published. */
  readonly overlapMs: number;
  /** Shared backend: whether this replica leads (rotates and removes). Absent: it always does. */
  readonly leads?: () => boolean;
}

export type JwtKeyEvent = { readonly event: 'jwt_key.created' | 'jwt_key.retired' | 'jwt_key.removed'; readonly kid: string };

export class JwtKeys implements JwtKeySet {
  readonly #o: JwtKeyOptions;
  #held: LoadedJwtKeys = { records: [], keys: new Map(), version: null };
  /** Changes run one at a time: the list has one writer in this process. */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(o: JwtKeyOptions) {
    this.#o = o;
  }

  /** Loads the keys (creating the first one when there is none); the events say what was created. */
  static async open(o: JwtKeyOptions): Promise<{ keys: JwtKeys; events: JwtKeyEvent[] }> {
    const keys = new JwtKeys(o);
    keys.#held = (await o.backend.load()) ?? keys.#held;
    const events = await keys.maintain();
    return { keys, events };
  }

  /** The key that signs now. */
  active(): JwtSigningKey {
    const r = this.#held.records.find((k) => k.retiredAtMs === undefined)!;
    const privateKey = this.#held.keys.get(r.kid)!;
    return { keyId: r.kid, privateKey, publicKey: createPublicKey(privateKey) };
  }

  /** Every key a live token may name: the active one and the retired ones still in their overlap, oldest first. */
  published(): JwtAuthority[] {
    return this.#held.records.map((r) => ({ keyId: r.kid, publicKey: createPublicKey(this.#held.keys.get(r.kid)!) }));
  }

  /** Rotates now: a new active key; the previous one is retired and published for the overlap. */
  rotate(): Promise<JwtKeyEvent[]> {
    return this.#mutate(() => this.#plan(true, false));
  }

  /** Creates the first key, rotates a key past its period, removes retired keys past their overlap. */
  maintain(): Promise<JwtKeyEvent[]> {
    return this.#mutate(() => {
      const now = this.#o.clock.nowMs();
      const active = this.#held.records.find((k) => k.retiredAtMs === undefined);
      // Without a key nothing can sign: any replica creates it (compare-and-swap settles a race). The rest is the leader's.
      if (!active) return this.#plan(true, false);
      if (this.#o.backend.shared && !(this.#o.leads?.() ?? true)) return null;
      return this.#plan(now - active.createdAtMs >= this.#o.rotateEveryMs, this.#o.backend.shared);
    });
  }

  /** Shared backend: takes what another replica committed. True when the keys changed. */
  refresh(): Promise<boolean> {
    const run = this.#queue.then(() => this.#reload());
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #reload(): Promise<boolean> {
    const b = this.#o.backend;
    if (!b.shared || (await b.version?.()) === this.#held.version) return false;
    const loaded = await b.load();
    if (!loaded || loaded.version === this.#held.version) return false;
    this.#held = loaded;
    return true;
  }

  #mutate(plan: () => Plan | null): Promise<JwtKeyEvent[]> {
    const run = this.#queue.then(async () => {
      try {
        return await this.#apply(plan());
      } catch (e) {
        if (!(e instanceof TesseraError && e.code === 'TESSERA_ERR_CA_CONFLICT')) throw e;
        // Another replica committed first (or took the lead): take its list, then decide again against it.
        await this.#reload();
        return this.#apply(plan());
      }
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #apply(p: Plan | null): Promise<JwtKeyEvent[]> {
    if (!p || p.events.length === 0) return [];
    const version = await this.#o.backend.save(p.next, p.change, this.#held.version, p.fenced);
    this.#held = { ...p.next, version };
    return p.events;
  }

  #plan(rotate: boolean, fenced: boolean): Plan {
    const now = this.#o.clock.nowMs();
    const events: JwtKeyEvent[] = [];
    let records: readonly JwtKeyRecord[] = this.#held.records;
    const keys = new Map(this.#held.keys);
    const added: string[] = [];
    if (rotate) {
      records = records.map((r) => {
        if (r.retiredAtMs !== undefined) return r;
        events.push({ event: 'jwt_key.retired', kid: r.kid });
        return { ...r, retiredAtMs: now, publishUntilMs: now + this.#o.overlapMs };
      });
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const kid = jwkThumbprint(createPublicKey(privateKey));
      keys.set(kid, privateKey);
      added.push(kid);
      records = [...records, { kid, createdAtMs: now }];
      events.push({ event: 'jwt_key.created', kid });
    }
    const expired = records.filter((r) => r.publishUntilMs !== undefined && r.publishUntilMs <= now);
    records = records.filter((r) => !expired.includes(r));
    for (const r of expired) {
      keys.delete(r.kid);
      events.push({ event: 'jwt_key.removed', kid: r.kid });
    }
    return { next: { records, keys, version: this.#held.version }, change: { added, removed: expired.map((r) => r.kid) }, events, fenced };
  }
}

interface Plan {
  readonly next: LoadedJwtKeys;
  readonly change: { readonly added: readonly string[]; readonly removed: readonly string[] };
  readonly events: JwtKeyEvent[];
  readonly fenced: boolean;
}
