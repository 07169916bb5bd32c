// What a changed `tessera injector` config file means for the running injector (audit 31b N1): the file is read and
// validated whole, then split into what takes effect at the next admission (the sidecar settings, bundleFile,
// logLevel) and what the process cannot change without a restart (the bound socket, the watched serving pair).
import { changedKeys } from '../../../common/config/changed-keys.js';
import { type InjectorFileConfig, loadInjectorFileConfig } from './injector-file-config.js';

/** Keys a running injector keeps as it started with: `listen` is a bound socket, the serving pair's paths its TLS context and watcher. */
export const RESTART_ONLY_KEYS = ['listen', 'certFile', 'keyFile'] as const;

type RestartOnlyKey = (typeof RESTART_ONLY_KEYS)[number] | 'logLevel';

export const INJECTOR_RESTART_COMMAND = 'kubectl -n tessera-system rollout restart deployment/tessera-injector';

export interface InjectorConfigChange {
  /** The config now in force: the file's, with the restart-only keys as they were. */
  readonly next: InjectorFileConfig;
  /** Keys that take effect now (dotted for nested ones: `resources.limits.memory`). */
  readonly applied: readonly string[];
  /** Restart-only keys whose value in the file differs from the running one. */
  readonly needRestart: readonly RestartOnlyKey[];
}

/**
 * Compares a freshly parsed file config with the running one. Pure: nothing is applied here. `liveLogLevel`: the
 * logger's level can be set while running (the CLI's pino logger can); otherwise logLevel is restart-only too.
 */
export function compareInjectorConfig(running: InjectorFileConfig, file: InjectorFileConfig, liveLogLevel: boolean): InjectorConfigChange {
  const restartOnly: readonly RestartOnlyKey[] = liveLogLevel ? RESTART_ONLY_KEYS : [...RESTART_ONLY_KEYS, 'logLevel'];
  const needRestart = restartOnly.filter((k) => running[k] !== file[k]);
  const live = (['bundleFile', 'logLevel'] as const).filter((k) => !restartOnly.includes(k as RestartOnlyKey) && running[k] !== file[k]);
  const applied = [...changedKeys(running.settings, file.settings, { nested: true }), ...live];
  const kept = Object.fromEntries(restartOnly.map((k) => [k, running[k]]));
  const next: InjectorFileConfig = Object.freeze({ ...file, ...kept });
  return { next, applied, needRestart };
}

/**
 * Re-reads the running config's file. Throws the coded error of loadInjectorFileConfig (TESSERA_ERR_CONFIG_INVALID
 * or _UNREADABLE, naming file, line and key) when it does not parse or validate: nothing of it is then applied.
 */
export function rereadInjectorConfig(running: InjectorFileConfig, liveLogLevel: boolean): InjectorConfigChange {
  return compareInjectorConfig(running, loadInjectorFileConfig(running.file, { version: running.settings.version }), liveLogLevel);
}
