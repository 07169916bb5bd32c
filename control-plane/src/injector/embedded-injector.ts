// The injector webhook run inside the control plane (`injector.enabled`): its serving pair read once at start,
// the bundle taken live from the CA. The standalone `tessera injector` (main.ts here) re-reads its files instead.

import { readFileSync } from 'node:fs';
import { TesseraError } from '../../../common/errors.js';
import type { InjectorSettings } from '../config/cp-config.js';
import { type InjectorLogger, type InjectorWebhook, type InjectorWebhookOptions, startInjectorWebhook } from './webhook-server.js';

/** The control plane's logger, timers and clocks, for the webhook. */
export type EmbeddedInjectorDeps = { readonly log: InjectorLogger } & Pick<InjectorWebhookOptions, 'timers' | 'clock' | 'preciseClock'>;

export async function startEmbeddedInjector(settings: InjectorSettings, bundlePem: () => string, deps: EmbeddedInjectorDeps): Promise<InjectorWebhook> {
  const read = (f: string) => {
    try {
      return readFileSync(f, 'utf8');
    } catch (e) {
      throw new TesseraError('TESSERA_ERR_INJECT_BAD_CONFIG', `injector: cannot read ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  return startInjectorWebhook({ listen: settings.listen, certPem: read(settings.certFile), keyPem: read(settings.keyFile), snapshot: () => ({ config: settings.settings, bundlePem }), logger: deps.log, ...{ timers: deps.timers, clock: deps.clock, preciseClock: deps.preciseClock } });
}
