// The injector webhook run inside the control plane (`injector.enabled`): its serving pair read once at start,
// the bundle taken live from the CA. The standalone `tessera injector` (main.ts here) re-reads its files instead.

import { readNamedFileSync } from '../../../shared-io/read-named-file.js';
import type { InjectorSettings } from '../config/cp-config.js';
import { type InjectorLogger, type InjectorWebhook, type InjectorWebhookOptions, startInjectorWebhook } from './webhook-server.js';

/** The control plane's logger, timers and clocks, for the webhook. */
export type EmbeddedInjectorDeps = { readonly log: InjectorLogger } & Pick<InjectorWebhookOptions, 'timers' | 'clock' | 'preciseClock'>;

export async function startEmbeddedInjector(settings: InjectorSettings, bundlePem: () => string, deps: EmbeddedInjectorDeps): Promise<InjectorWebhook> {
  // Bounded, regular files only, as every file a config names (a FIFO in a Secret's place must not hang the start).
  const read = (path: string, key: string) => readNamedFileSync({ path, what: `injector.${key}`, code: 'TESSERA_ERR_INJECT_BAD_CONFIG' }).toString('utf8');
  return startInjectorWebhook({ listen: settings.listen, certPem: read(settings.certFile, 'certFile'), keyPem: read(settings.keyFile, 'keyFile'), snapshot: () => ({ config: settings.settings, bundlePem }), logger: deps.log, ...{ timers: deps.timers, clock: deps.clock, preciseClock: deps.preciseClock } });
}
