// The standalone injector's composition root (`tessera injector`): the webhook, its serving certificate (re-read
// when the Secret changes, seen by the one file watcher) and the trust bundle file. No CA, no store, no control plane: it stays up when they are not.
import { createSecureContext } from 'node:tls';
import { describeError, TesseraError } from '../../../common/errors.js';
import { watchPaths } from '../../../shared-io/file-watch.js';
import { certificatesOf, readNamedFile, readPrivateKeyFile } from '../../../shared-io/read-named-file.js';
import { type Timers, realTimers } from '../../../shared-io/timers.js';
import type { InjectorFileConfig } from './injector-file-config.js';
import { type InjectorLogger, startInjectorWebhook } from './webhook-server.js';

export interface InjectorDeps {
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

export async function startInjector(config: InjectorFileConfig, deps: InjectorDeps): Promise<InjectorHandle> {
  const { log } = deps;
  let serving = await readServingPair(config);
  let lastBundle = await readBundle(config.bundleFile);
  let closing = false;

  // Read at every admission, so a bundle change (CA prepare) reaches new pods at once; a file that goes bad
  // keeps the last good bundle in use: a stale anchor still verifies the control plane until the next activate.
  const bundlePem = async () => {
    try {
      lastBundle = await readBundle(config.bundleFile);
    } catch (e) {
      log.warn({ err: describeError(e) }, 'injector: trust bundle file unusable; the last good bundle stays in use');
    }
    return lastBundle;
  };

  const webhook = await startInjectorWebhook({
    listen: config.listen,
    certPem: serving.certPem,
    keyPem: serving.keyPem,
    config: config.settings,
    bundlePem,
    logger: log,
    notReadyReason: () => (closing ? 'shutting down' : undefined),
  });

  const reload = async () => {
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
  // One reload at a time; a change seen during one is read again after it (its signature is already taken).
  let reloading: Promise<void> | undefined;
  let again = false;
  const reloadSoon = (): void => {
    if (reloading) {
      again = true;
      return;
    }
    reloading = reload().finally(() => {
      reloading = undefined;
      if (again && !closing) {
        again = false;
        reloadSoon();
      }
    });
  };
  const watch = watchPaths({ paths: [config.certFile, config.keyFile], onChange: reloadSoon, pollMs: deps.certReloadMs ?? 10_000, ...(deps.timers ? { timers: deps.timers } : {}) });

  log.info({ listen: webhook.address, bundleFile: config.bundleFile, proxyImage: config.settings.proxyImage }, 'injector ready');
  let closed: Promise<void> | undefined;
  return {
    address: webhook.address,
    close() {
      closed ??= (async () => {
        closing = true;
        watch.close();
        await reloading;
        const drainMs = deps.drainMs ?? DEFAULT_DRAIN_MS;
        if (drainMs > 0) await new Promise<void>((resolve) => (deps.timers ?? realTimers).setTimeout(resolve, drainMs));
        await webhook.close();
        log.info({}, 'injector stopped');
      })();
      return closed;
    },
  };
}
