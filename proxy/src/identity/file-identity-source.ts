// The file identity source (identity.files): loads SVID chain, key and bundle from files, watches them, and
// installs a new snapshot when all three are consistent. Writers such as cert-manager replace the files one at
// a time, so an inconsistent state is retried for a settle window before it is refused; the old snapshot stays.
// A chain refused because it is not valid yet is read again when it becomes valid.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { type Clock, systemClock } from '../../../common/clock.js';
import { TesseraError, describeError } from '../../../common/errors.js';
import { type PathWatch, watchPaths } from '../../../shared-io/file-watch.js';
import { realTimers, type Timers } from '../../../shared-io/timers.js';
import type { IdentityInput, IdentitySnapshot } from './identity-snapshot.js';
import type { IdentitySource } from './identity-source.js';
import type { IdentityStore } from './identity-store.js';
import { watchSvidExpiry } from './expiry-alarm.js';
import { type IdentityFiles, loadIdentityFiles } from './load-identity-files.js';

export interface FileIdentityEvent {
  /** success: installed; refused: the files stayed invalid for the settle window; failure: unreadable or a fault. */
  readonly result: 'success' | 'refused' | 'failure';
  readonly error?: string;
  readonly code?: string;
  /** Serial of the installed SVID (success only). */
  readonly serial?: string;
  /**
   * What the files changed: the SVID (chain or key), the trust bundle, or both. A success installs that change; a
   * refusal or failure names what was being changed (`svid` when the files could not be read far enough to tell).
   * Absent on a failure of the file watch itself.
   */
  readonly changed?: FileChange;
}

export type FileChange = 'svid' | 'bundle' | 'both';

export interface FileIdentitySourceOptions {
  readonly files: IdentityFiles;
  readonly store: IdentityStore;
  readonly onEvent: (e: FileIdentityEvent) => void;
  /** Poll fallback of the file watcher (default 1 s). */
  readonly pollMs?: number;
  /** Quiet time after a file event before reading (default 50 ms). */
  readonly debounceMs?: number;
  /** How long an inconsistent set of files is retried before it is refused (default 2 s). */
  readonly settleMs?: number;
  readonly clock?: Clock;
  readonly timers?: Timers;
  /** Where the SVID's coming expiry and its expiry are said (expiry-alarm.ts); unsaid without. */
  readonly log?: Logger;
}

/** Attempts within one settle window: the first at once, then this many more spread over the window. */
const SETTLE_RETRIES = 5;
/**
 * Files refused only for a certificate not valid yet are read again when it becomes valid, and at least this often
 * until then (a clock stepped forward by NTP comes sooner than a timer set on the old time): no file event may come.
 */
const NOT_YET_VALID_RECHECK_MS = 60_000;

/** Content identity of an input's two parts (PEM layout ignored): the SVID (DER of the chain and the key), the bundle. */
interface ContentHash {
  readonly svid: string;
  readonly bundle: string;
}

function contentHash(input: IdentityInput): ContentHash {
  const svid = createHash('sha256');
  for (const c of input.chain) svid.update(c.raw);
  svid.update(input.key.privateKey.export({ type: 'pkcs8', format: 'der' }));
  const bundle = createHash('sha256');
  for (const b of input.bundles.bundles()) {
    bundle.update(b.trustDomain.name);
    for (const a of b.authorities) bundle.update(a.raw);
  }
  return { svid: svid.digest('hex'), bundle: bundle.digest('hex') };
}

/** What `next` changes against what is installed; undefined when nothing (or nothing is known yet: the SVID). */
function changeOf(applied: ContentHash | undefined, next: ContentHash | undefined): FileChange | undefined {
  if (!applied || !next) return 'svid';
  const svid = next.svid !== applied.svid;
  const bundle = next.bundle !== applied.bundle;
  return svid && bundle ? 'both' : svid ? 'svid' : bundle ? 'bundle' : undefined;
}

/** The part a load failure names (its error's `role`): the trust bundle file, or else the SVID's. */
function failedPart(e: unknown): FileChange {
  return e instanceof TesseraError && e.details?.['role'] === 'trust bundle' ? 'bundle' : 'svid';
}

export class FileIdentitySource implements IdentitySource {
  /** Files carry no policies: a local directory or the default action decides. */
  readonly deliversPolicies = false;
  /** Files are renewed by someone else (cert-manager, a script). */
  readonly nextRenewalMs = undefined;
  readonly clockOffsetMs = undefined;
  readonly #o: FileIdentitySourceOptions;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #settleMs: number;
  #appliedHash: ContentHash | undefined;
  #watch: PathWatch | undefined;
  /** End of the current settle window, while files are inconsistent. */
  #settleDeadlineMs: number | undefined;
  #retry: unknown;
  #stopAlarm: (() => void) | undefined;

  constructor(opts: FileIdentitySourceOptions) {
    this.#o = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#timers = opts.timers ?? realTimers;
    this.#settleMs = opts.settleMs ?? 2_000;
  }

  /** Synchronous first load; throws TesseraError (naming the file or the mismatch) so the proxy fails at start. */
  loadInitial(): IdentitySnapshot {
    const input = loadIdentityFiles(this.#o.files);
    const snapshot = this.#o.store.update(input);
    this.#appliedHash = contentHash(input);
    return snapshot;
  }

  /** The first identity loads synchronously (loadInitial): ready as soon as that returned. */
  ready(): Promise<void> {
    return Promise.resolve();
  }

  /** All the proxy can do about files is say when they expired. */
  notReadyReason(): string | undefined {
    const c = this.#o.store.current;
    if (!c) return 'no SVID loaded yet';
    return c.notAfterMs <= this.#clock.nowMs() ? `the SVID in ${this.#o.files.certFile} expired at ${new Date(c.notAfterMs).toISOString()}` : undefined;
  }

  /** Watches the three files (their directories, so symlink swaps are seen). */
  start(): void {
    if (this.#watch) return;
    const { certFile, keyFile, bundleFile } = this.#o.files;
    if (this.#o.log) this.#stopAlarm = watchSvidExpiry(this.#o.store, { nowMs: () => this.#clock.nowMs(), timers: this.#timers, log: this.#o.log, certFile });
    this.#watch = watchPaths({
      paths: [certFile, keyFile, bundleFile],
      onChange: () => this.#attempt(),
      onError: (e) => this.#emit({ result: 'failure', error: describeError(e) }),
      timers: this.#timers,
      ...(this.#o.pollMs !== undefined ? { pollMs: this.#o.pollMs } : {}),
      ...(this.#o.debounceMs !== undefined ? { debounceMs: this.#o.debounceMs } : {}),
    });
    // Read once now: covers a start without loadInitial, and a change made between loadInitial and start
    // (the watcher's baseline is taken now); identical content is a no-op.
    this.#attempt();
  }

  stop(): void {
    this.#watch?.close();
    this.#watch = undefined;
    this.#stopAlarm?.();
    this.#stopAlarm = undefined;
    this.#cancelRetry();
    this.#settleDeadlineMs = undefined;
  }

  /** Reads all three files and installs them when valid; otherwise retries until the settle window ends. */
  #attempt(): void {
    this.#cancelRetry();
    const before = this.#o.store.current;
    let input: IdentityInput | undefined;
    let hash: ContentHash | undefined;
    try {
      input = loadIdentityFiles(this.#o.files);
      hash = contentHash(input);
      const changed = changeOf(this.#appliedHash, hash);
      if (changed === undefined) {
        // Back to what is installed (a touch, or a half-write that was undone): nothing to do.
        this.#settleDeadlineMs = undefined;
        return;
      }
      const snapshot = this.#o.store.update(input);
      this.#appliedHash = hash;
      this.#settleDeadlineMs = undefined;
      this.#emit({ result: 'success', serial: snapshot.serial, changed });
    } catch (e) {
      // Files that did not load say which one failed: a bad bundle file alone is the bundle's refusal (audit 35a F2).
      const changed = hash ? (changeOf(this.#appliedHash, hash) ?? 'svid') : failedPart(e);
      if (hash !== undefined && this.#o.store.current !== before) {
        // Installed, but a store subscriber threw: the swap happened, so do not install it again.
        this.#appliedHash = hash;
        this.#settleDeadlineMs = undefined;
        this.#emit({ result: 'failure', error: `installed, but a subscriber failed: ${describeError(e)}`, changed });
        return;
      }
      this.#failed(e, input, changed);
    }
  }

  #failed(e: unknown, input: IdentityInput | undefined, changed: FileChange): void {
    const now = this.#clock.nowMs();
    this.#settleDeadlineMs ??= now + this.#settleMs;
    const left = this.#settleDeadlineMs - now;
    if (left > 0 && this.#watch) {
      // Another writer step may still be coming: look again soon, and once more right at the deadline.
      const step = Math.max(10, Math.floor(this.#settleMs / SETTLE_RETRIES));
      this.#retry = this.#timers.setTimeout(() => {
        this.#retry = undefined;
        this.#attempt();
      }, Math.min(step, left));
      return;
    }
    this.#settleDeadlineMs = undefined;
    const code = e instanceof TesseraError ? e.code : undefined;
    // Unreadable files and faults are failures; files read but not forming a valid identity are refused.
    const result = code === undefined || code === 'TESSERA_ERR_IDENTITY_FILE_UNREADABLE' ? 'failure' : 'refused';
    this.#emit({ result, error: describeError(e), ...(code ? { code } : {}), changed });
    this.#recheckWhenValid(input, now);
  }

  /** A chain refused while one of its certificates is not valid yet (skew, an early renewal) is tried again then. */
  #recheckWhenValid(input: IdentityInput | undefined, now: number): void {
    if (!input || !this.#watch) return;
    const validFrom = Math.max(...input.chain.map((c) => c.validFromDate.getTime()));
    if (!(validFrom > now)) return;
    this.#retry = this.#timers.setTimeout(() => {
      this.#retry = undefined;
      this.#attempt();
    }, Math.min(validFrom - now + 1, NOT_YET_VALID_RECHECK_MS));
  }

  #cancelRetry(): void {
    if (this.#retry === undefined) return;
    this.#timers.clearTimeout(this.#retry);
    this.#retry = undefined;
  }

  #emit(e: FileIdentityEvent): void {
    try {
      this.#o.onEvent(e);
    } catch {
      // an observer's fault must not stop the reloads
    }
  }
}
