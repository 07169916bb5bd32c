// Keeps Config/Watch open (mTLS with the current SVID, reopened after each rotation, jittered backoff on loss) and
// turns each complete snapshot into trust bundles + a policy snapshot + the deny-list, validated whole before any
// is applied.
// A bad or older snapshot is refused and counted; the previous one stays. Versions are compared within one
// control-plane replica (address): each replica's counter is its own, so after a failover or failback the first
// complete snapshot of the new replica is taken as it is.
import { TesseraError } from '../../../common/errors.js';
import type { BackoffOptions } from '../../../common/backoff.js';
import type { ConfigSnapshotMsg } from '../../../common/contract/config-v1.js';
import type { PolicySnapshot } from '../../../common/policy/policy-snapshot.js';
import type { JwtBundleSet } from '../../../common/spiffe/jwt-svid.js';
import { type TrustBundle, TrustBundleSet } from '../../../common/spiffe/trust-bundle.js';
import { jwtBundleFromWire } from './jwt-bundle-holder.js';
import type { Timers } from '../../../shared-io/timers.js';
import { policySnapshotFromWatch } from '../authz/control-plane-policy-source.js';
import { type DenyList, createDenyList } from '../tls/deny-list.js';
import type { IssuedSvid } from './control-plane-svid-source.js';
import { bundleFromDer } from './signed-svid.js';
import { ReconnectingStream, type StreamCallbacks, type StreamHandle } from './reconnecting-stream.js';

export interface ConfigUpdate {
  /** Decimal integer text, monotonic across control-plane restarts. */
  readonly version: string;
  readonly bundles: TrustBundleSet;
  /** JWT-SVID keys by trust domain (empty from a control plane that predates JWT-SVIDs). */
  readonly jwtBundles: JwtBundleSet;
  readonly policies: PolicySnapshot;
  /** Banned SPIFFE IDs and SVID serials (tessera revoke). */
  readonly denyList: DenyList;
  readonly generatedAtMs: number;
}

/** Validates a whole snapshot; throws TESSERA_ERR_CONFIG_WATCH_BAD_SNAPSHOT. */
export function parseConfigSnapshot(msg: ConfigSnapshotMsg, opts: { defaultAction?: 'deny' | 'allow' } = {}): ConfigUpdate {
  if (!/^\d+$/.test(msg.version)) throw new TesseraError('TESSERA_ERR_CONFIG_WATCH_BAD_SNAPSHOT', `snapshot version "${msg.version}" is not a decimal integer`);
  const bundles: TrustBundle[] = [];
  const jwtBundles = new Map<string, ReturnType<typeof jwtBundleFromWire>>();
  for (const b of msg.bundles) {
    try {
      bundles.push(bundleFromDer(b.trust_domain, b.x509_authorities));
      if (b.jwt_authorities?.length) jwtBundles.set(b.trust_domain, jwtBundleFromWire(b.jwt_authorities));
    } catch (e) {
      throw new TesseraError('TESSERA_ERR_CONFIG_WATCH_BAD_SNAPSHOT', `bundle of "${b.trust_domain}": ${(e as Error).message}`, {}, { cause: e });
    }
  }
  if (bundles.length === 0) throw new TesseraError('TESSERA_ERR_CONFIG_WATCH_BAD_SNAPSHOT', 'snapshot holds no trust bundle');
  return {
    version: msg.version,
    bundles: new TrustBundleSet(bundles),
    jwtBundles,
    policies: policySnapshotFromWatch(msg, opts),
    denyList: createDenyList(msg.deny_list?.spiffe_ids ?? [], msg.deny_list?.serials ?? []),
    generatedAtMs: Number(msg.generated_at_unix_ms) || 0,
  };
}

export type ConfigWatchEvent =
  | { readonly kind: 'applied'; readonly version: string }
  | { readonly kind: 'refused'; readonly version: string; readonly error: string }
  /** `cause`: the error the stream ended with (undefined for a clean end), for a caller that judges the refusal. */
  | { readonly kind: 'disconnected'; readonly error: string; readonly retryInMs: number; readonly cause?: unknown };

export interface ConfigWatchOptions {
  /** Opens the stream with this SVID as client certificate (ControlPlaneClient.watch). */
  readonly open: (svid: IssuedSvid, cb: StreamCallbacks<ConfigSnapshotMsg>) => StreamHandle;
  readonly currentSvid: () => IssuedSvid | undefined;
  /** Swaps bundles and policies in; throwing refuses the snapshot (the stores keep the old one). */
  readonly apply: (update: ConfigUpdate) => void;
  readonly defaultAction?: 'deny' | 'allow';
  readonly onEvent?: (e: ConfigWatchEvent) => void;
  readonly timers?: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
  readonly random?: () => number;
  readonly backoff?: BackoffOptions;
  /** The reconnect delay by attempt (the control-plane endpoints' full jitter); wins over `backoff`. */
  readonly retryDelayMs?: (attempt: number) => number;
}

export class ConfigWatch {
  readonly #o: ConfigWatchOptions;
  readonly #stream: ReconnectingStream<ConfigSnapshotMsg>;
  #version: bigint | undefined;
  /** The address the applied version came from, and the one of the stream open now. */
  #versionFrom: string | undefined;
  #streamAddress: string | undefined;
  #first: (() => void)[] = [];

  constructor(opts: ConfigWatchOptions) {
    this.#o = opts;
    this.#stream = new ReconnectingStream<ConfigSnapshotMsg>({
      open: (cb) => {
        const svid = opts.currentSvid();
        if (!svid) throw new TesseraError('TESSERA_ERR_CONFIG_WATCH_BAD_SNAPSHOT', 'no SVID yet to authenticate the watch with');
        const handle = opts.open(svid, cb);
        // Messages reach #onSnapshot from the newest stream only (ReconnectingStream drops the older ones').
        this.#streamAddress = handle.address;
        return handle;
      },
      onMessage: (msg) => this.#onSnapshot(msg),
      onDisconnect: (error, retryInMs) => opts.onEvent?.({ kind: 'disconnected', error: errorText(error), retryInMs, cause: error }),
      ...(opts.timers ? { timers: opts.timers } : {}),
      ...(opts.random ? { random: opts.random } : {}),
      ...(opts.backoff ? { backoff: opts.backoff } : {}),
      ...(opts.retryDelayMs ? { retryDelayMs: opts.retryDelayMs } : {}),
    });
  }

  /** The version of the applied snapshot. */
  get version(): string | undefined {
    return this.#version?.toString();
  }

  get connected(): boolean {
    return this.#stream.connected;
  }

  start(): void {
    this.#stream.start();
  }

  /** Reopens the stream with the current SVID (call after each rotation: the old SVID's stream ends at its expiry). */
  restart(): void {
    this.#stream.restart();
  }

  stop(): void {
    this.#stream.stop();
  }

  /** Resolves once a snapshot has been applied. */
  firstSnapshot(): Promise<void> {
    if (this.#version !== undefined) return Promise.resolve();
    return new Promise((ok) => this.#first.push(ok));
  }

  #onSnapshot(msg: ConfigSnapshotMsg): void {
    let update: ConfigUpdate;
    try {
      update = parseConfigSnapshot(msg, this.#o.defaultAction ? { defaultAction: this.#o.defaultAction } : {});
      const v = BigInt(update.version);
      const from = this.#streamAddress;
      // Another replica numbers its snapshots itself: its complete snapshot replaces the state whatever the number.
      const sameSource = this.#version !== undefined && from === this.#versionFrom;
      // Same version again (a reconnect): nothing changed. Older: a stale replica; never go back.
      if (sameSource && v === this.#version) return;
      if (sameSource && v < this.#version!) {
        throw new TesseraError('TESSERA_ERR_CONFIG_WATCH_BAD_SNAPSHOT', `snapshot ${v} is older than the applied ${this.#version}`);
      }
      this.#o.apply(update);
      this.#version = v;
      this.#versionFrom = from;
    } catch (e) {
      this.#o.onEvent?.({ kind: 'refused', version: msg.version, error: errorText(e) });
      return;
    }
    this.#o.onEvent?.({ kind: 'applied', version: update.version });
    for (const l of this.#first.splice(0)) l();
  }
}

function errorText(e: unknown): string {
  if (e === undefined) return 'stream ended';
  if (e instanceof TesseraError) return `${e.code}: ${e.message}`;
  return String((e as Error).message ?? e);
}
