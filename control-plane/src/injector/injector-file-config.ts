// The config file of `tessera injector --config F` (the webhook alone, no CA): schema, defaults and loading.
import { dirname, resolve } from 'node:path';
import type { ObjectSchema } from '../../../common/config/schema.js';
import { lineOf, parseYamlConfig } from '../../../common/config/validate-yaml.js';
import { isTesseraError, TesseraError } from '../../../common/errors.js';
import { readConfigText } from '../../../shared-io/read-named-file.js';
import { INJECTOR_CONFIG_SCHEMA, type InjectorConfig, type InjectorConfigInput, resolveInjectorConfig } from './injector-config.js';

export interface InjectorFileConfig {
  readonly file: string;
  readonly listen: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** The trust bundle (PEM) handed to new sidecars; read at every admission, the last good copy is kept. */
  readonly bundleFile: string;
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error';
  readonly settings: InjectorConfig;
}

const { enabled: _enabled, ...sidecarKeys } = INJECTOR_CONFIG_SCHEMA.properties;

/** The control plane's `injector:` block without `enabled`, plus where the bundle comes from (no CA here). */
export const INJECTOR_FILE_SCHEMA: ObjectSchema = {
  type: 'object',
  description: 'The sidecar-injection webhook run alone (tessera injector): it never talks to the CA.',
  properties: {
    ...sidecarKeys,
    bundleFile: { type: 'string', format: 'path', required: true, description: 'Trust bundle PEM (e.g. the tessera-trust-bundle ConfigMap)' },
    logLevel: { type: 'string', enum: ['debug', 'info', 'warn', 'error'], default: 'info' },
  },
};

type Raw = InjectorConfigInput & { listen: string; certFile: string; keyFile: string; bundleFile: string; logLevel: InjectorFileConfig['logLevel'] };

/** Validates the text; errors are TESSERA_ERR_CONFIG_INVALID / _UNREADABLE naming file, line and key. */
export function parseInjectorFileConfig(text: string, file: string, defaults: { version: string }): InjectorFileConfig {
  const parsed = parseYamlConfig<Raw>(text, file, INJECTOR_FILE_SCHEMA);
  const { listen, certFile, keyFile, bundleFile, logLevel, ...input } = parsed.value;
  const base = dirname(resolve(file));
  let settings: InjectorConfig;
  try {
    settings = resolveInjectorConfig({ version: defaults.version, ...input });
  } catch (e) {
    if (!isTesseraError(e, 'TESSERA_ERR_INJECT_BAD_CONFIG')) throw e;
    // resolveInjectorConfig names keys as "injector.<key>"; here they sit at the top of the file.
    const key = String(e.details['key'] ?? 'injector').replace(/^injector\.?/, '') || 'proxyImage';
    const line = lineOf(parsed, key.split('.'));
    throw new TesseraError('TESSERA_ERR_CONFIG_INVALID', `${file}:${line}: ${key}: ${e.message.replace(/^injector\.[^:]*: /, '')}`, { file, line, key });
  }
  return Object.freeze({
    file,
    listen,
    certFile: resolve(base, certFile),
    keyFile: resolve(base, keyFile),
    bundleFile: resolve(base, bundleFile),
    logLevel,
    settings,
  });
}

export function loadInjectorFileConfig(file: string, defaults: { version: string }): InjectorFileConfig {
  const text = readConfigText({ path: file, what: 'config' });
  return parseInjectorFileConfig(text, file, defaults);
}
