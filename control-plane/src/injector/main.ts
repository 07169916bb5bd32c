// The standalone injector's composition root (`tessera injector`): the webhook, its serving certificate (re-read
// when the Secret changes, seen by the one file watcher), its own config file (watched the same way: the sidecar
// settings follow a ConfigMap edit, config-reload.ts) and the trust bundle file. No CA, no store, no control plane: it stays up when they are not.
import { createSecureContext } from 'node:tls';
import { describeError, TesseraError } from '../../../common/errors.js';
import { watchPaths } from '../../../shared-io/file-watch.js';
import { certificatesOf, readNamedFile, readPrivateKeyFile } from '../../../shared-io/read-named-file.js';
import { type Timers, realTimers } from '../../../shared-io/timers.js';
import { INJECTOR_RESTART_COMMAND, rereadInjectorConfig } from './config-reload.js';
import type { InjectorFileConfig } from './injector-file-config.js';
import { type InjectorLogger, type InjectorWebhookOptions, startInjectorWebhook } from './webhook-server.js';

export interface InjectorDeps extends Pick<InjectorWebhookOptions, 'preciseClock'> {
  readonly log: InjectorLogger;
  /** Poll fallback of the serving certificate files' watcher (default 10 s); changes are seen at once anyway. */
  readonly certReloadMs?: number;
  /**
   * After close() is called, how long the listener stays open with `/ready` answering 503 (and every answer
   * `Connection: close`) before it stops accepting; default 2 s. Probes and clients see "not ready", not a refused
   * connection, while the endpoint leaves the Service.
   */
  readonly drainMs?: number;
  readonly timers?: Timers;
  /** Sets the logger's level when the config file's logLevel changes; absent, a logLevel change needs a restart. */
  readonly setLogLevel?: (level: InjectorFileConfig['logLevel']) => void;
}

export const DEFAULT_DRAIN_MS = 2_000;

export interface InjectorHandle {
  readonly address: string;
  /** Marks /ready false, keeps serving for the drain window, then stops accepting and lets open requests finish (at most 5 s). */
  close(): Promise<void>;
}

interface ServingPair {
  readonly certPem: string;
  readonly keyPem: string;
}

/** Reads and checks the serving certificate and key: both PEM, and the key belongs to the certificate. */
async function readServingPair(config: InjectorFileConfig): Promise<ServingPair> {
  const certFile = { path: config.certFile, what: 'certFile', code: 'TESSERA_ERR_CONFIG_UNREADABLE' } as const;
  const keyFile = { path: config.keyFile, what: 'keyFile', code: 'TESSERA_ERR_CONFIG_UNREADABLE' } as const;
  const cert = await readNamedFile(certFile);
  certificatesOf(certFile, cert);
  const key = await readPrivateKeyFile(keyFile);
  const pair = { certPem: cert.toString('utf8'), keyPem: key.toString('utf8') };
  try {
    createSecureContext({ cert: pair.certPem, key: pair.keyPem });
  } catch (e) {
    throw new TesseraError('TESSERA_ERR_INJECT_BAD_CONFIG', `keyFile ${config.keyFile} does not fit certFile ${config.certFile}: ${(e as Error).message}`, { file: config.keyFile });
  }
  return pair;
}

/** Runs `task` one at a time; a call during a run runs it once more after (the watcher's signature is already taken). */
function coalesced(task: () => Promise<void>, stopped: () => boolean): { soon(): void; settled(): Promise<void> | undefined } {
  let running: Promise<void> | undefined;
  let again = false;
  const soon = (): void => {
    if (running) {
      again = true;
      return;
    }
    running = task().finally(() => {
      running = undefined;
      if (again && !stopped()) {
        again = false;
        soon();
      }
    });
  };
  return { soon, settled: () => running };
}

/** The bundle file as clean PEM certificates only (nothing else in the file ever reaches a pod annotation). */
async function readBundle(file: string): Promise<string> {
  const named = { path: file, what: 'bundleFile', code: 'TESSERA_ERR_CONFIG_UNREADABLE' } as const;
  try {
    return certificatesOf(named, await readNamedFile(named))
      .map((c) => c.toString())
      .join('');
  } catch (e) {
    throw new TesseraError('TESSERA_ERR_INJECT_NO_BUNDLE', (e as Error).message, { file }, { cause: e });
  }
}

/**
 * One config version in force and the last good copy of its bundle. An admission works from one version throughout
 * (audit 32a F3) and updates only that version's copy: an admission of a replaced version cannot overwrite the
 * bundle the reload set, and a read that started earlier cannot overwrite one that started later (`seq`).
 */
interface ConfigVersion {
  readonly config: InjectorFileConfig;
  good: { readonly pem: string; readonly seq: number };
}

export async function startInjector(config: InjectorFileConfig, deps: InjectorDeps): Promise<InjectorHandle> {
  const { log } = deps;
  let serving = await readServingPair(config);
  let reads = 0;
  let closing = false;
  // The version in force: replaced whole by a valid edit of the file; each admission takes it once (snapshot below).
  let running: ConfigVersion = { config, good: { pem: await readBundle(config.bundleFile), seq: ++reads } };

  // Read at every admission, so a bundle change (CA prepare) reaches new pods at once; a file that goes bad
  // keeps the version's last good bundle in use: a stale anchor still verifies the control plane until the next activate.
  const bundleOf = async (version: ConfigVersion): Promise<string> => {
    const seq = ++reads;
    try {
      const pem = await readBundle(version.config.bundleFile);
      if (seq > version.good.seq) version.good = { pem, seq };
      return pem;
    } catch (e) {
      log.warn({ err: describeError(e) }, 'injector: trust bundle file unusable; the last good bundle stays in use');
      return version.good.pem;
    }
  };

  const webhook = await startInjectorWebhook({
    listen: config.listen,
    certPem: serving.certPem,
    keyPem: serving.keyPem,
    snapshot: () => {
      const version = running;
      return { config: version.config.settings, bundlePem: () => bundleOf(version) };
    },
    ...{ logger: log, preciseClock: deps.preciseClock },
    notReadyReason: () => (closing ? 'shutting down' : undefined),
  });

  const reloadServing = async () => {
    try {
      const next = await readServingPair(config);
      if (next.certPem === serving.certPem && next.keyPem === serving.keyPem) return;
      webhook.updateCertificate(next.certPem, next.keyPem);
      serving = next;
      log.info({ certFile: config.certFile }, 'injector: serving certificate reloaded');
    } catch (e) {
      // Half-updated Secret or a bad file: keep serving the old pair; the next poll tries again.
      log.warn({ err: describeError(e) }, 'injector: serving certificate not reloaded; the previous one stays');
    }
  };
  // All or nothing: a file that does not parse or validate, or names a bundle that cannot be read, changes nothing.
  const reloadConfig = async () => {
    try {
      const current = running.config;
      const { next, applied, needRestart } = rereadInjectorConfig(current, deps.setLogLevel !== undefined);
      const seq = ++reads;
      const bundle = next.bundleFile === current.bundleFile ? running.good : { pem: await readBundle(next.bundleFile), seq };
      if (needRestart.length > 0) {
        const kept = Object.fromEntries(needRestart.map((k) => [k, current[k]]));
        log.warn({ file: config.file, keys: needRestart, kept, restart: INJECTOR_RESTART_COMMAND }, `injector: ${needRestart.join(', ')} changed in the config file but cannot change while running; the running values stay until a restart (${INJECTOR_RESTART_COMMAND})`);
      }
      if (applied.length === 0) {
        if (needRestart.length === 0) log.info({ file: config.file }, 'injector: config file re-read; no setting changed');
        return;
      }
      if (next.logLevel !== current.logLevel) deps.setLogLevel?.(next.logLevel);
      running = { config: next, good: bundle };
      log.info({ file: config.file, changed: applied, proxyImage: next.settings.proxyImage }, `injector: config reloaded (${applied.join(', ')}); new pods get it at their next admission`);
    } catch (e) {
      log.warn({ file: config.file, err: describeError(e) }, 'injector: config file not reloaded; the previous settings stay in force');
    }
  };
  const servingReload = coalesced(reloadServing, () => closing);
  const configReload = coalesced(reloadConfig, () => closing);
  const timers = deps.timers ? { timers: deps.timers } : {};
  const watch = watchPaths({ paths: [config.certFile, config.keyFile], onChange: servingReload.soon, pollMs: deps.certReloadMs ?? 10_000, ...timers });
  const configWatch = watchPaths({ paths: [config.file], onChange: configReload.soon, pollMs: deps.certReloadMs ?? 10_000, ...timers });

  log.info({ listen: webhook.address, bundleFile: config.bundleFile, proxyImage: config.settings.proxyImage }, 'injector ready');
  let closed: Promise<void> | undefined;
  return {
    address: webhook.address,
    close() {
      closed ??= (async () => {
        closing = true;
        watch.close();
        configWatch.close();
        await Promise.all([servingReload.settled(), configReload.settled()]);
        const drainMs = deps.drainMs ?? DEFAULT_DRAIN_MS;
        if (drainMs > 0) await new Promise<void>((resolve) => (deps.timers ?? realTimers).setTimeout(resolve, drainMs));
        await webhook.close();
        log.info({}, 'injector stopped');
      })();
      return closed;
    },
  };
}
