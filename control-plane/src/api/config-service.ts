// tessera.config.v1.Config/Watch: authenticates the caller by its client SVID, sends its snapshot at once and
// again whenever its content changes; ends the stream when the caller's SVID expires (it reconnects renewed) or
// when the caller's ID or SVID serial is banned. Versions come from the store's counter: the first is taken before
// serving, and publishes run one at a time so the versions a stream sees only grow. A stream has at most one snapshot
// on its way: one that does not read (a zero window, a stalled proxy) gets only the newest once it reads again.
// Snapshots are built once per SPIFFE ID and version and shared by that ID's streams, from parts prepared once per
// version for every ID (snapshot-cache.ts, config-snapshot.ts); opens are rate-limited per ID (stream-caller.ts). The
// build and write of a stream's snapshot is queued, not done in the open or the publish: the queue runs in slices of
// bounded snapshot bytes (slice-queue.ts), each with the newest version there is then, so a stream's versions still
// only grow, and a thousand opens or a publish to a thousand streams never hold the event loop in one piece.
import type * as grpc from '@grpc/grpc-js';
import type { Clock } from '../../../common/clock.js';
import type { AuthorizationPolicy, BreakGlassGrant } from '../../../common/policy/policy-types.js';
import type { TrustBundle } from '../../../common/spiffe/trust-bundle.js';
import { TesseraError, isTesseraError } from '../../../common/errors.js';
import type { SvidAttestor } from '../attestation/svid-attestor.js';
import type { BuiltSnapshot, SnapshotEncoder, SnapshotInputs } from '../policy/config-snapshot.js';
import { SnapshotCache } from '../policy/snapshot-cache.js';
import { type RateLimit, RateLimiter } from '../issuance/rate-limiter.js';
import { RejectedMessage } from './guarded-service.js';
import { carriedEncoding } from './shared-encoding.js';
import { SliceQueue } from './slice-queue.js';
import { toGrpcError } from './grpc-status.js';
import { admitStream, authenticateStream, type OpenStream, OpenStreams, streamOpenRate } from './stream-caller.js';
import type { ConfigSnapshotMsg } from '../../../common/contract/config-v1.js';

export interface ConfigInputs {
  readonly bundles: () => readonly TrustBundle[];
  /** JWT-SVID keys by trust domain name (absent: none published). */
  readonly jwtAuthorities?: () => SnapshotInputs['jwtAuthorities'];
  readonly policies: () => readonly AuthorizationPolicy[];
  readonly grants: () => readonly BreakGlassGrant[];
  readonly denyList: () => SnapshotInputs['denyList'];
}

export interface ConfigHubOptions {
  readonly inputs: ConfigInputs;
  readonly svids: SvidAttestor;
  readonly peerChain: (call: { getPeer(): string }) => Buffer[];
  /** Operator bans: throws TESSERA_ERR_REVOCATION_* when the caller's ID or SVID serial is banned (required, as in Issuer). */
  readonly admit: (spiffeId: string, serial: string) => void;
  readonly clock: Clock;
  /** Persistent, monotonic version counter (shared by replicas): the next version. */
  readonly nextVersion: () => Promise<number>;
  readonly onWatchers?: (count: number) => void;
  readonly onVersion?: (version: number) => void;
  readonly onSent?: () => void;
  readonly onRefused?: (code: string, caller: string, detail: string | undefined, spiffeId?: string) => void;
  /** Open Watch streams one SPIFFE ID may hold (stream-caller.ts). */
  readonly maxStreamsPerId?: number;
  /** Watch opens one SPIFFE ID may make a second once its burst (maxStreamsPerId) is spent (stream-caller.ts). */
  readonly streamOpensPerSecond?: number;
  /** Watch opens one SPIFFE ID may make (default streamOpenRate(), stream-caller.ts). */
  readonly openRate?: RateLimit;
  /** A publish failed (no new version from the store): the watchers keep what they have. */
  readonly onPublishError?: (e: unknown) => void;
  /** The Watch response serializer: snapshots are then spliced from pieces encoded once per version. */
  readonly encode?: SnapshotEncoder;
  /** One SPIFFE ID's snapshot was built: how many policies and grants that build looked at. */
  readonly onBuild?: (examined: number) => void;
}

/**
 * Snapshot bytes written per turn of the event loop at most (at least one snapshot per turn): on the 2-vCPU bench
 * machine a write costs ~5-10 ms per MiB (grpc-js copies it into a frame of its own per stream).
 */
export const SEND_SLICE_BYTES = 1 << 20;
/** Streams served per turn at most, however small their snapshots. */
export const SEND_SLICE_STREAMS = 64;

interface Watcher extends OpenStream {
  readonly call: grpc.ServerWritableStream<unknown, ConfigSnapshotMsg>;
  lastKey: string;
  /** A snapshot is written and not yet taken by the HTTP/2 stream (the caller has not read it). */
  sending: boolean;
  /** Content changed while one was on its way: the newest goes once it has been taken. */
  owed: boolean;
}

export class ConfigHub {
  readonly #o: ConfigHubOptions;
  readonly #watchers: OpenStreams<Watcher>;
  #version: number;
  /** This version's snapshots, replaced whole at each publish. */
  #snapshots: SnapshotCache;
  #publishing: Promise<void> = Promise.resolve();
  /** Streams owed their newest snapshot, served a slice per turn of the event loop. */
  readonly #sends: SliceQueue<Watcher>;
  /** A publish failed (no version: the store is down) and is owed to the watchers; retried from tick(). */
  #owed = false;
  #retrying = false;
  #retryAtMs = 0;

  private constructor(opts: ConfigHubOptions, version: number) {
    this.#o = opts;
    this.#watchers = new OpenStreams<Watcher>({
      ...(opts.onWatchers ? { onCount: opts.onWatchers } : {}),
      onRemoved: (w) => {
        this.#sends.drop(w);
        const id = w.peer.spiffeId.toString();
        if (this.#watchers.openBy(id) === 0) this.#snapshots.forget(id);
      },
      opens: new RateLimiter(opts.openRate ?? streamOpenRate(opts), opts.clock),
    });
    this.#sends = new SliceQueue<Watcher>({ run: (w) => this.#write(w), budget: SEND_SLICE_BYTES, maxItems: SEND_SLICE_STREAMS });
    this.#version = version;
    this.#snapshots = this.#newCache(undefined);
    opts.onVersion?.(version);
  }

  /** A new process starts at a new version, so a reconnecting proxy never sees one go backwards. */
  static async open(opts: ConfigHubOptions): Promise<ConfigHub> {
    return new ConfigHub(opts, await opts.nextVersion());
  }

  get version(): number {
    return this.#version;
  }

  get watchers(): number {
    return this.#watchers.size;
  }

  /**
   * Something every snapshot depends on changed: new version, then each caller gets what differs for it (read
   * when this publish's turn comes). Resolves when done; a failure goes to onPublishError, never rejects.
   */
  publish(): Promise<void> {
    const next = this.#publishing.then(() => this.#publishNow()).catch((e: unknown) => this.#o.onPublishError?.(e));
    this.#publishing = next;
    return next;
  }

  /** Resolves once the publishes asked for so far are done (before the store closes). */
  settled(): Promise<void> {
    return this.#publishing;
  }

  async #publishNow(): Promise<void> {
    let failure: { error: unknown } | undefined;
    try {
      this.#version = await this.#o.nextVersion();
      this.#o.onVersion?.(this.#version);
    } catch (error) {
      failure = { error };
    }
    // The inputs are the same for every caller: read once (at the first build), and each ID's snapshot built once
    // for all its streams. Even a failed publish starts a new cache: an open then sees the inputs of now, as before.
    this.#snapshots = this.#newCache(this.#snapshots);
    for (const w of [...this.#watchers]) {
      const banned = this.#banned(w.peer.spiffeId.toString(), w.peer.serial);
      // A ban ends its streams even when no new version could be had; content waits for one.
      if (banned) this.#watchers.drop(w, banned);
      else if (!failure) this.#send(w);
    }
    // Done when every stream has what differs for it (the next publish waits for this one, as versions must grow).
    await this.#sends.flushed();
    if (failure) {
      // Keep the change owed: the tick publishes it again once a version can be had (the store is back).
      this.#owed = true;
      throw failure.error;
    }
    this.#owed = false;
  }

  /** The short tick: end streams whose client SVID has expired. */
  tick(): void {
    const now = this.#o.clock.nowMs();
    this.#watchers.sweep(now);
    if (this.#owed && !this.#retrying && now >= this.#retryAtMs) {
      // At most every 5 s: each failure is logged, and an outage should not write a line per tick.
      this.#retryAtMs = now + 5_000;
      this.#retrying = true;
      void this.publish().finally(() => {
        this.#retrying = false;
      });
    }
  }

  /** Ends every stream with OK (shutdown). */
  endAll(): void {
    this.#watchers.endAll();
  }

  handlers(): grpc.UntypedServiceImplementation {
    return {
      Watch: (call: grpc.ServerWritableStream<unknown, ConfigSnapshotMsg>) => {
        const peer = authenticateStream(call, this.#o);
        if (!peer) return;
        // The request carries nothing, but an oversized or undecodable one is refused as on every other method.
        if (call.request instanceof RejectedMessage) {
          this.#o.onRefused?.(call.request.code, call.getPeer(), call.request.size === undefined ? 'malformed request' : `request of ${call.request.size} bytes`, peer.spiffeId.toString());
          call.emit('error', toGrpcError(new TesseraError(call.request.code)));
          return;
        }
        if (!admitStream(call, peer, this.#watchers, this.#o)) return;
        const w: Watcher = { peer, call, lastKey: '', sending: false, owed: false };
        this.#watchers.add(w);
        this.#send(w);
      },
    };
  }

  #newCache(previous: SnapshotCache | undefined): SnapshotCache {
    const { encode, onBuild } = this.#o;
    return new SnapshotCache(() => this.#inputs(), { ...(encode ? { encode } : {}), ...(onBuild ? { onBuild } : {}), ...(previous ? { previous } : {}) });
  }

  #inputs(): SnapshotInputs {
    const i = this.#o.inputs;
    const jwt = i.jwtAuthorities?.();
    return { version: this.#version, bundles: i.bundles(), ...(jwt ? { jwtAuthorities: jwt } : {}), policies: i.policies(), grants: i.grants(), denyList: i.denyList() };
  }

  #send(w: Watcher): void {
    // Snapshots are whole, so only the newest matters: without this wait, a caller that never reads kept one more
    // per change on the heap (an outside audit: 1,000 such streams grew the heap by 1.8 MB a change, unbounded).
    if (w.sending) {
      w.owed = true;
      return;
    }
    this.#sends.add(w);
  }

  /** Builds (or takes from the cache) the stream's snapshot at the newest version and writes it if it differs; returns the bytes written. */
  #write(w: Watcher): number {
    if (!this.#watchers.has(w)) return 0;
    let built: BuiltSnapshot;
    try {
      built = this.#snapshots.get(w.peer.spiffeId, this.#o.clock.nowMs());
    } catch (e) {
      // Not a snapshot the caller could use (a loaded policy set always compiles): end the stream, say why.
      this.#o.onPublishError?.(e);
      this.#watchers.drop(w, isTesseraError(e) ? e : new TesseraError('TESSERA_ERR_ISSUANCE_INTERNAL'));
      return 0;
    }
    if (built.contentKey === w.lastKey) return 0;
    w.lastKey = built.contentKey;
    w.sending = true;
    // The callback runs once the message has gone into the HTTP/2 stream (it waits for the caller's window).
    w.call.write(built.message, () => this.#taken(w));
    this.#o.onSent?.();
    return carriedEncoding(built.message)?.length ?? 0;
  }

  #taken(w: Watcher): void {
    w.sending = false;
    if (!w.owed || !this.#watchers.has(w)) return;
    w.owed = false;
    this.#send(w);
  }

  /** The ban's error when this watcher may no longer watch, else undefined. */
  #banned(id: string, serial: string): TesseraError | undefined {
    try {
      this.#o.admit(id, serial);
      return undefined;
    } catch (e) {
      return isTesseraError(e) ? e : new TesseraError('TESSERA_ERR_ISSUANCE_INTERNAL');
    }
  }
}
