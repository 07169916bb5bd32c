// The control plane's own config file, watched (audit 31b N1): the running process keeps the config it started with
// (listeners, store, CA and attestors are built from it once), so an edit, such as a ConfigMap update swapped in by
// the kubelet, is said out loud rather than silently ignored: which top-level keys differ, or that the file no
// longer validates (the next start would fail), and the command that applies it. Policies have their own watcher.
// Each change is counted by what it means (ConfigFileChange), and a refusal carries its code as a field, as the
// other warnings do.
import { existsSync } from 'node:fs';
import { changedKeys } from '../../../common/config/changed-keys.js';
import { describeError, isTesseraError } from '../../../common/errors.js';
import { type PathWatch, watchPaths } from '../../../shared-io/file-watch.js';
import { readConfigText } from '../../../shared-io/read-named-file.js';
import type { Timers } from '../../../shared-io/timers.js';
import { type ControlPlaneConfig, parseControlPlaneConfig } from '../config/cp-config.js';
import type { ControlPlaneLogger } from '../logger.js';

export const CONTROL_PLANE_RESTART_COMMAND = 'kubectl -n tessera-system rollout restart deployment/tessera-control-plane';

export interface ConfigFileWatchDeps {
  readonly log: ControlPlaneLogger;
  readonly timers?: Timers;
  /** Poll fallback of the watcher (default 10 s); file-system events are seen at once anyway. */
  readonly pollMs?: number;
  /** Counts each change seen (tessera_cp_config_file_changes_total{result}). */
  readonly onChange?: (result: ConfigFileChange) => void;
}

/**
 * What an edit means: `changed` valid (a restart applies it), `invalid` (it no longer validates, or cannot be read:
 * a restart would fail), `gone` (removed), `restored` (back to the content this process started with).
 */
export type ConfigFileChange = 'changed' | 'invalid' | 'gone' | 'restored';

/** The file's text; undefined when it is gone; the coded refusal when it is there but cannot be read as a config. */
function readText(file: string): string | undefined | { refused: unknown } {
  try {
    // Bounded, regular files only, UTF-8: a FIFO or a device swapped in must not stall or grow the control plane.
    return readConfigText({ path: file, what: 'config' });
  } catch (e) {
    return existsSync(file) ? { refused: e } : undefined;
  }
}

const sameRead = (a: ReturnType<typeof readText>, b: ReturnType<typeof readText>) => a === b || (typeof a === 'object' && typeof b === 'object' && describeError(a.refused) === describeError(b.refused));

/** Top-level keys whose value differs between two configs (by their JSON). */
export function changedConfigKeys(running: ControlPlaneConfig, edited: ControlPlaneConfig): string[] {
  return changedKeys(running, edited, { nested: false, ignore: ['file'] });
}

/** Starts watching config.file; logs a warning each time its content changes from what was last seen. */
export function warnOnConfigEdit(config: ControlPlaneConfig, deps: ConfigFileWatchDeps): PathWatch {
  const { log } = deps;
  const file = config.file;
  const started = readText(file);
  let seen = started;
  const onChange = () => {
    const text = readText(file);
    // A touch, a chmod or a swap to identical content (a ConfigMap re-applied unchanged) says nothing.
    if (sameRead(text, seen)) return;
    seen = text;
    if (text === started) {
      deps.onChange?.('restored');
      log.info({ file }, 'control plane: config file is back to the content this process started with');
      return;
    }
    const restart = `${CONTROL_PLANE_RESTART_COMMAND}, or restart the process`;
    if (text === undefined) {
      deps.onChange?.('gone');
      log.warn({ file, restart }, 'control plane: config file is gone; the running process keeps the config it started with, and a restart would fail');
      return;
    }
    try {
      if (typeof text === 'object') throw text.refused;
      const keys = changedConfigKeys(config, parseControlPlaneConfig(text, file));
      deps.onChange?.('changed');
      log.warn(
        { file, keys, restart },
        `control plane: config file changed${keys.length ? ` (${keys.join(', ')})` : ''}; the running process keeps the config it started with: restart to apply it (${restart}). Policies are re-read on their own`,
      );
    } catch (e) {
      deps.onChange?.('invalid');
      const code = isTesseraError(e) ? e.code : undefined;
      log.warn({ file, ...(code ? { code } : {}), err: describeError(e), restart }, 'control plane: config file changed and no longer validates; the running process keeps the config it started with, and a restart would fail until it is fixed');
    }
  };
  return watchPaths({ paths: [file], onChange, onError: (e) => log.warn({ err: describeError(e) }, 'control plane: config file watch failed'), pollMs: deps.pollMs ?? 10_000, ...(deps.timers ? { timers: deps.timers } : {}) });
}
