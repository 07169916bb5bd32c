// Federated trust domains: per domain, the bundle we hold (the last good fetch, kept across restarts when a store
// is given; else the bootstrap file),
// refreshed from its bundle endpoint on the `spiffe_refresh_hint` it publishes (bounded min/max; a failure
// retries after the minimum). A refused or failed fetch keeps the last good bundle and is counted by code; a
// changed bundle calls onChange (→ a Config/Watch push). Each bundle is kept under the configured trust domain only.
// What a peer's document costs is bounded: a fetch whose bytes are the held document's is not judged again, and the
// RSA keys of a new one are judged off the event loop, each distinct key once (federated-bundle.ts, spiffe-bundle.ts).
import { createHash } from 'node:crypto';
import type { Clock } from '../../../common/clock.js';
import { TesseraError, describeError, isTesseraError } from '../../../common/errors.js';
import { type JwtAuthority, jwtAuthoritiesKey } from '../../../common/spiffe/spiffe-bundle.js';
import type { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import { TrustBundle, TrustBundleSet } from '../../../common/spiffe/trust-bundle.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import type { Timers } from '../../../shared-io/timers.js';
import type { ControlPlaneLogger } from '../logger.js';
import { type EndpointTrust, fetchBundleDocument } from './bundle-fetch.js';
import { type FederatedBundle, type KeyWeakness, acceptFederatedBundle, checkNotExpired, federatedTrustBundle, judgeAuthorities } from './federated-bundle.js';

export interface FederatedDomain {
  readonly trustDomain: TrustDomain;
  readonly bundleEndpointUrl: string;
  readonly profile: 'https_web' | 'https_spiffe';
  /** https_spiffe: the SPIFFE ID the endpoint must present. */
  readonly endpointSpiffeId?: SpiffeId;
  /** The bundle held before the first fetch (text of a SPIFFE bundle JSON or PEM roots); required for https_spiffe. */
  readonly bootstrap?: string;
  /** https_web: PEM roots to check the server by instead of the system's. */
  readonly caPem?: string;
}

export interface FederationOptions {
  readonly domains: readonly FederatedDomain[];
  /** Our own bundle: an https_spiffe endpoint may present an SVID of our domain. */
  readonly ownBundle: () => TrustBundle;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly refreshMinMs: number;
  readonly refreshMaxMs: number;
  readonly fetchTimeoutMs: number;
  readonly log: ControlPlaneLogger;
  /** A federated bundle changed (its X.509 or JWT authorities). */
  readonly onChange: () => void;
  readonly onRefused: (trustDomain: string, code: string) => void;
  readonly onAccepted: (trustDomain: string) => void;
  /** Where the last good document of each domain survives a restart (absent: memory only). */
  readonly store?: LastGoodStore;
  /** The RSA key rules, off the event loop and once per distinct key (the control plane's RsaKeyVerdicts). */
  readonly keyWeakness: KeyWeakness;
}

export interface LastGoodStore {
  load(trustDomain: string): string | undefined;
  /** Throws on a failed write (logged; the bundle is in force anyway). */
  save(trustDomain: string, text: string): void;
}

/** Parses a bootstrap bundle: a SPIFFE bundle document (JSON), else PEM roots. */
export async function parseBootstrapBundle(text: string, td: TrustDomain, nowMs: number, weakness: KeyWeakness): Promise<FederatedBundle> {
  if (text.trimStart().startsWith('{')) return acceptFederatedBundle(text, td, nowMs, weakness);
  const bundle = await federatedTrustBundle(TrustBundle.parse(td, text).authorities, td, nowMs);
  await judgeAuthorities(bundle.authorities, weakness);
  return { bundle, jwtAuthorities: [], sequence: undefined, refreshHintSeconds: undefined, ignored: [] };
}

const keyOf = (b: FederatedBundle) => JSON.stringify([b.bundle.fingerprints().sort(), jwtAuthoritiesKey(b.jwtAuthorities).sort()]);
const digestOf = (text: string) => createHash('sha256').update(text).digest('hex');

/** A held bundle and the digest of the document it was read from (none for a PEM bootstrap). */
interface Held extends FederatedBundle {
  readonly document?: string;
}

/** The delay before the next fetch: the published hint, clamped; the maximum when there is none. */
export function nextRefreshMs(hintSeconds: number | undefined, minMs: number, maxMs: number): number {
  if (hintSeconds === undefined) return maxMs;
  return Math.min(maxMs, Math.max(minMs, hintSeconds * 1000));
}

export class Federation {
  readonly #o: FederationOptions;
  readonly #held = new Map<string, Held>();
  readonly #timers = new Map<string, unknown>();
  #stopped = false;

  constructor(o: FederationOptions) {
    this.#o = o;
    // The config refuses these; checked again here because a federated bundle for our own domain would replace our
    // CA on every proxy.
    const own = o.ownBundle().trustDomain.name;
    const names = o.domains.map((d) => d.trustDomain.name);
    const wrong = names.find((n, i) => n === own || names.indexOf(n) !== i);
    if (wrong !== undefined) throw new TesseraError('TESSERA_ERR_CONFIG_INVALID', `federation: "${wrong}" is ${wrong === own ? "this control plane's own trust domain" : 'listed twice'}`);
  }

  /** Takes up each domain's kept document, else its bootstrap bundle (whose refusal stops the start); before start(). */
  async load(): Promise<void> {
    for (const d of this.#o.domains) {
      const kept = await this.#loadKept(d);
      if (kept) this.#held.set(d.trustDomain.name, kept);
      else if (d.bootstrap !== undefined) {
        const bundle = await parseBootstrapBundle(d.bootstrap, d.trustDomain, this.#o.clock.nowMs(), this.#o.keyWeakness);
        this.#held.set(d.trustDomain.name, { ...bundle, ...(d.bootstrap.trimStart().startsWith('{') ? { document: digestOf(d.bootstrap) } : {}) });
      }
    }
  }

  /** The bundles held now, one per federated domain that has one. */
  bundles(): TrustBundle[] {
    return [...this.#held.values()].map((h) => h.bundle);
  }

  /** JWT-SVID keys by federated trust domain. */
  jwtAuthorities(): Map<string, readonly JwtAuthority[]> {
    return new Map([...this.#held].map(([td, h]) => [td, h.jwtAuthorities]));
  }

  /** Fetches every domain now, then keeps each on its own schedule. */
  start(): void {
    for (const d of this.#o.domains) void this.#cycle(d);
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers.values()) this.#o.timers.clearTimeout(t);
    this.#timers.clear();
  }

  /** One fetch of one domain; resolves with the delay until the next one. Never throws (failures are counted). */
  async refresh(d: FederatedDomain): Promise<number> {
    const td = d.trustDomain.name;
    const { refreshMinMs: min, refreshMaxMs: max } = this.#o;
    try {
      const text = await fetchBundleDocument(d.bundleEndpointUrl, this.#trust(d), this.#o.fetchTimeoutMs, this.#o.timers);
      const document = digestOf(text);
      const before = this.#held.get(td);
      if (before?.document === document) {
        // The very document in force, judged when it was taken: only what time changes is checked again.
        checkNotExpired(before.bundle.authorities, d.trustDomain, this.#o.clock.nowMs());
        this.#o.onAccepted(td);
        return nextRefreshMs(before.refreshHintSeconds, min, max);
      }
      const got = await acceptFederatedBundle(text, d.trustDomain, this.#o.clock.nowMs(), this.#o.keyWeakness);
      // An older document replayed (a cache in front of an https_web endpoint, say) would bring back authorities the
      // peer rotated away. A peer that really restarted its sequence needs its kept document removed (docs).
      // Once a peer numbers its documents, one without a number is no newer either: taken, it would reset the guard
      // (the next lower sequence would pass). The same number with other keys is taken: a peer that never bumps its
      // number still rotates, and one that does never serves an older document under its current number.
      if (before?.sequence !== undefined && (got.sequence === undefined || got.sequence < before.sequence)) {
        throw new TesseraError('TESSERA_ERR_FEDERATION_BUNDLE_ROLLBACK', `sequence ${got.sequence ?? 'missing'} after the held bundle's ${before.sequence}`, { trustDomain: td, held: String(before.sequence), got: got.sequence === undefined ? null : String(got.sequence) });
      }
      this.#held.set(td, { ...got, document });
      this.#o.onAccepted(td);
      if (!before || keyOf(before) !== keyOf(got)) {
        this.#keep(td, text);
        // The sequence as text: past 2^53 a number would print another one. Skipped entries are said, not refused.
        this.#o.log.info({ trustDomain: td, sequence: got.sequence === undefined ? undefined : String(got.sequence), authorities: got.bundle.fingerprints(), ...(got.ignored.length > 0 ? { ignored: got.ignored } : {}) }, 'federated bundle updated');
        this.#o.onChange();
      }
      return nextRefreshMs(got.refreshHintSeconds, min, max);
    } catch (e) {
      const code = isTesseraError(e) ? e.code : 'TESSERA_ERR_FEDERATION_FETCH_FAILED';
      this.#o.onRefused(td, code);
      this.#o.log.warn({ trustDomain: td, code, err: describeError(e) }, 'federated bundle refused; the last good one is kept');
      return min;
    }
  }

  /** The last good document kept by an earlier run, when it still passes every check; else undefined. */
  async #loadKept(d: FederatedDomain): Promise<Held | undefined> {
    const td = d.trustDomain.name;
    try {
      const text = this.#o.store?.load(td);
      if (text === undefined) return undefined;
      return { ...(await acceptFederatedBundle(text, d.trustDomain, this.#o.clock.nowMs(), this.#o.keyWeakness)), document: digestOf(text) };
    } catch (e) {
      this.#o.log.warn({ trustDomain: td, err: describeError(e) }, 'the kept federated bundle is unusable; starting from the bootstrap bundle');
      return undefined;
    }
  }

  #keep(td: string, text: string): void {
    try {
      this.#o.store?.save(td, text);
    } catch (e) {
      this.#o.log.error({ trustDomain: td, err: describeError(e) }, 'keeping the federated bundle on disk failed');
    }
  }

  async #cycle(d: FederatedDomain): Promise<void> {
    const delay = await this.refresh(d);
    if (this.#stopped) return;
    this.#timers.set(d.trustDomain.name, this.#o.timers.setTimeout(() => void this.#cycle(d), delay));
  }

  #trust(d: FederatedDomain): EndpointTrust {
    if (d.profile === 'https_web') return { profile: 'https_web', ...(d.caPem ? { caPem: d.caPem } : {}) };
    if (!d.endpointSpiffeId) throw new TesseraError('TESSERA_ERR_FEDERATION_FETCH_FAILED', `${d.trustDomain.name}: https_spiffe needs endpointSpiffeId`);
    // The endpoint's SVID may be of its own domain (the usual case) or of ours; each domain only by its own bundle.
    const anchors = new TrustBundleSet([this.#o.ownBundle(), ...this.bundles()]);
    return { profile: 'https_spiffe', endpointId: d.endpointSpiffeId, anchors, nowMs: this.#o.clock.nowMs() };
  }
}
