// The control plane's read-only CA directory (a Kubernetes Secret), watched (audit 38b F9): the running process keeps
// the CA it loaded at start (documented: the Secret is replaced, then the Deployment restarted), so a change under it,
// such as the kubelet's `..data` swap to a replaced Secret, is said out loud rather than silently ignored: the CA files
// changed, whether a restart would load them (or fail on them, and why), and the command that applies them. The same
// shape as the config file's warning (config-file-watch.ts). Nothing is reloaded: that stays a restart.
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../../../common/clock.js';
import { describeError } from '../../../common/errors.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import { readSmallFile } from '../../../shared-io/bounded-read.js';
import { type PathWatch, watchPaths } from '../../../shared-io/file-watch.js';
import { realTimers, type Timers } from '../../../shared-io/timers.js';
import type { PersistenceMode } from '../ca/authority-persistence.js';
import { AuthorityStore } from '../ca/authority-store.js';
import { readJwtKeyFiles } from '../ca/jwt-key-secret.js';
import type { ControlPlaneLogger } from '../logger.js';
import { CONTROL_PLANE_RESTART_COMMAND } from './config-file-watch.js';

export interface CaDirWatchDeps {
  /** The data dir: the CA was loaded from its `ca` directory. */
  readonly dataDir: string;
  readonly trustDomain: TrustDomain;
  readonly clock: Clock;
  readonly log: Pick<ControlPlaneLogger, 'info' | 'warn'>;
  readonly timers?: Timers;
  /** Poll fallback of the watcher (default 10 s); file-system events are seen at once anyway. */
  readonly pollMs?: number;
}

/** The most one CA file may hold (certificates, keys and ca-state.json are a few KiB). */
const MAX_CA_FILE_BYTES = 1 << 20;

/** What the directory holds, by content: `text` to compare, and the entries that could not be read and why. */
export interface CaDirContent {
  readonly text: string;
  readonly unreadable: readonly string[];
}

/**
 * Each visible entry's name and a digest of its bytes, read bounded and without blocking (symlinks followed; the
 * kubelet's `..data` and timestamped entries are how, not what). Undefined: the directory cannot be listed.
 */
export function caDirContent(dir: string): CaDirContent | undefined {
  let names: string[];
  try {
    names = readdirSync(dir)
      .filter((n) => !n.startsWith('.'))
      .sort();
  } catch {
    return undefined;
  }
  const unreadable: string[] = [];
  const lines = names.map((name) => {
    try {
      return `${name}=${createHash('sha256').update(readSmallFile(join(dir, name), MAX_CA_FILE_BYTES)).digest('hex')}`;
    } catch (e) {
      const why = `${name}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
      unreadable.push(why);
      return `!${why}`;
    }
  });
  return { text: lines.join('\n'), unreadable };
}

/**
 * Starts watching the CA directory when the CA was loaded read-only from it (`fixed`; an owner dir is changed by this
 * process itself, a shared CA is followed through the store); logs a warning each time its content changes from
 * what was last seen. Undefined: nothing to watch.
 */
export function warnOnCaDirChange(persistence: PersistenceMode, deps: CaDirWatchDeps): PathWatch | undefined {
  if (persistence !== 'fixed') return undefined;
  const { log } = deps;
  const timers = deps.timers ?? realTimers;
  const dir = join(deps.dataDir, 'ca');
  const started = caDirContent(dir)?.text;
  let seen = started;
  let settling: unknown;
  const restart = `${CONTROL_PLANE_RESTART_COMMAND}, or restart the process`;
  /** What a restart would load from `content`: the authorities, or why it would fail. */
  const judge = (content: CaDirContent | undefined): { authorities: string[]; jwtKeys?: string[] } | { err: unknown } => {
    try {
      if (!content) throw new Error(`${dir} cannot be listed`);
      // What the restart would load, read only once every file was read bounded (never a FIFO or a device).
      if (content.unreadable.length > 0) throw new Error(`unreadable: ${content.unreadable.join(', ')}`);
      const loaded = new AuthorityStore({ dir, clock: deps.clock, trustDomain: deps.trustDomain, inspectOnly: true }).load();
      // Its JWT-SVID key files too (audit 61k F2: a broken .next was announced as "restart to apply them").
      const files = readJwtKeyFiles(dir);
      const jwtKeys = files ? (['previous', 'current', 'next'] as const).flatMap((slot) => (files[slot] ? [`${files[slot].keyId} (${slot})`] : [])) : undefined;
      return { authorities: (loaded?.state.authorities ?? []).map((a) => `${a.id} (${a.state})`), ...(jwtKeys ? { jwtKeys } : {}) };
    } catch (err) {
      return { err };
    }
  };
  const onChange = (settled: boolean) => {
    const content = caDirContent(dir);
    // A swap to identical files (a Secret re-applied unchanged), a chmod or a touch says nothing.
    if (content?.text === seen) return;
    const verdict = judge(content);
    // The kubelet links a Secret's new keys only after it swapped `..data`: files that would not load are judged again
    // once the directory has settled, so that moment is not reported as a broken CA (audit 56d, a CI run).
    if ('err' in verdict && !settled) {
      settling ??= timers.setTimeout(() => {
        settling = undefined;
        onChange(true);
      }, CA_DIR_SETTLE_MS);
      return;
    }
    if (settling !== undefined) timers.clearTimeout(settling);
    settling = undefined;
    seen = content?.text;
    if (seen === started) log.info({ dir }, 'control plane: CA files are back to the content this process started with');
    else if ('err' in verdict) log.warn({ dir, err: describeError(verdict.err), restart }, `control plane: CA files changed (${dir}) and would not load; the running process keeps the CA it started with, and a restart would fail until they are fixed`);
    else log.warn({ dir, authorities: verdict.authorities, ...(verdict.jwtKeys ? { jwtKeys: verdict.jwtKeys } : {}), restart }, `control plane: CA files changed (${dir}); the running process keeps the CA it started with: restart to apply them (${restart})`);
  };
  const watch = watchPaths({ paths: [], dirs: [dir], onChange: () => onChange(false), onError: (e) => log.warn({ err: describeError(e) }, 'control plane: CA directory watch failed'), pollMs: deps.pollMs ?? 10_000, timers });
  return {
    close() {
      if (settling !== undefined) timers.clearTimeout(settling);
      settling = undefined;
      watch.close();
    },
  };
}

/** How long CA files that would not load are given to settle (the kubelet's links to new keys) before it is said. */
const CA_DIR_SETTLE_MS = 2_000;
