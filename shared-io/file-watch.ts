// The one file watcher (proxy identity files, edge certificates, both policy directories, the injector's serving
// pair): fs.watch on the parent directories (so atomic renames and Kubernetes `..data` symlink swaps are seen), a
// poll fallback for missed events, and a signature compare that calls back only when something really changed.
// Never throws out of a timer or watcher callback.
import { type FSWatcher, readdirSync, realpathSync, statSync, watch } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { realTimers, type Timers } from './timers.js';

export interface WatchPathsOptions {
  /** Files to watch; the directory holding each one is watched, so replacing the file is seen. */
  readonly paths: readonly string[];
  /** Directories whose entries are watched (adds, removals, changes of any entry). */
  readonly dirs?: readonly string[];
  /** Called (debounced) when the signature of the watched paths changed. */
  readonly onChange: () => void;
  /** Whatever onChange threw; it is reported here and never escapes into a watcher callback. */
  readonly onError?: (error: unknown) => void;
  /**
   * Poll fallback period while a watched directory has no working fs.watch (default 1 s): re-arms it and catches
   * what changed meanwhile. While every directory is watched the poll only guards against a missed event and runs
   * ARMED_POLL_FACTOR times less often.
   */
  readonly pollMs?: number;
  /** Quiet time after an event before the signature is read (default 50 ms). */
  readonly debounceMs?: number;
  /** Debounce and poll run here (default: the real timers, unref'd, so a watcher alone keeps no process alive). */
  readonly timers?: Timers;
}

export interface PathWatch {
  close(): void;
}

/**
 * What a path resolves to now: real path (changes on a symlink swap), mtime, size, inode (changes on an atomic
 * rename) and mode (so a chmod is noticed). A missing or unreadable file is a value, not an error.
 */
export function pathSignature(path: string): string {
  try {
    const real = realpathSync(path);
    const st = statSync(real);
    return `${real}|${st.mtimeMs}|${st.size}|${st.ino}|${st.mode}`;
  } catch (e) {
    return `missing:${(e as NodeJS.ErrnoException).code ?? 'error'}`;
  }
}

/** The sorted entries of a directory with each entry's signature (symlinks followed). */
export function dirSignature(dir: string): string {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (e) {
    return `missing-dir:${(e as NodeJS.ErrnoException).code ?? 'error'}`;
  }
  return names.map((n) => `${n}=${pathSignature(join(dir, n))}`).join('\n');
}

/**
 * How much less often the poll runs while fs.watch covers every directory: each poll wakes the event loop, and an
 * idle sidecar paid ~2 ms of CPU a second for a 1 s poll (a missed inotify event is rare: found within 10 s).
 */
export const ARMED_POLL_FACTOR = 10;

interface ArmedDir {
  watcher: FSWatcher;
  ino: number;
}

/** Starts watching; the first onChange comes only after something changes from the state seen now. */
export function watchPaths(opts: WatchPathsOptions): PathWatch {
  const timers = opts.timers ?? realTimers;
  const debounceMs = opts.debounceMs ?? 50;
  const files = opts.paths.map((p) => resolve(p));
  const dirs = (opts.dirs ?? []).map((d) => resolve(d));
  // A directory's parent is watched too, so a directory that appears late or is replaced is noticed.
  const watched = [...new Set([...files.map((f) => dirname(f)), ...dirs, ...dirs.map((d) => dirname(d))])];
  const armed = new Map<string, ArmedDir>();
  let closed = false;
  let debounce: unknown;

  const signature = () => JSON.stringify([files.map(pathSignature), dirs.map(dirSignature)]);
  let last = signature();

  const check = () => {
    if (closed) return;
    try {
      const now = signature();
      if (now === last) return;
      last = now;
      opts.onChange();
    } catch (e) {
      try {
        opts.onError?.(e);
      } catch {
        // a failing error handler must not break the watcher either
      }
    }
  };

  const schedule = () => {
    if (closed) return;
    if (debounce !== undefined) timers.clearTimeout(debounce);
    debounce = timers.setTimeout(() => {
      debounce = undefined;
      check();
    }, debounceMs);
  };

  const disarm = (dir: string) => {
    const a = armed.get(dir);
    if (!a) return;
    armed.delete(dir);
    try {
      a.watcher.close();
    } catch {
      // already closed
    }
  };

  // (Re-)arms one directory watcher: missing directories are retried by the poll, and a directory that was
  // replaced (new inode) gets a fresh watcher, since the old one watches the deleted directory.
  const arm = (dir: string) => {
    let ino: number;
    try {
      ino = statSync(dir).ino;
    } catch {
      disarm(dir);
      return;
    }
    const current = armed.get(dir);
    if (current && current.ino === ino) return;
    disarm(dir);
    try {
      const watcher = watch(dir, { persistent: false }, schedule);
      watcher.on('error', () => {
        disarm(dir);
        schedule();
      });
      armed.set(dir, { watcher, ino });
    } catch {
      // not watchable now (removed in between, too many watches): the poll still covers it
    }
  };

  const pollMs = opts.pollMs ?? 1_000;
  let poll: unknown;
  const schedulePoll = () => {
    poll = timers.setTimeout(
      () => {
        if (closed) return;
        for (const d of watched) arm(d);
        check();
        schedulePoll();
      },
      armed.size === watched.length ? pollMs * ARMED_POLL_FACTOR : pollMs,
    );
  };
  for (const d of watched) arm(d);
  schedulePoll();

  return {
    close() {
      if (closed) return;
      closed = true;
      timers.clearTimeout(poll);
      if (debounce !== undefined) timers.clearTimeout(debounce);
      for (const d of [...armed.keys()]) disarm(d);
    },
  };
}
