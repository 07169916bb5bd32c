// The effective config as the control plane's GET /config shows it (as proxy/src/config/redact-config.ts does the
// proxy's): everything but secrets, so the database URL goes without its password.
import { redactPgUrl } from '../store/postgres/pg-connection-config.js';
import type { ControlPlaneConfig } from './cp-config.js';

/** The config with the database URL's password removed (a urlFile's path is shown as it is: it holds no secret). */
export function redactedConfig<C extends Pick<ControlPlaneConfig, 'store'>>(config: C): C {
  const s = config.store;
  if (s.kind !== 'postgres' || !('url' in s.source)) return config;
  return { ...config, store: { ...s, source: { url: redactPgUrl(s.source.url) } } };
}
