// Tracing settings from the proxy config and the standard OpenTelemetry SDK environment variables
// (OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER[_ARG],
// OTEL_TRACES_EXPORTER, OTEL_SDK_DISABLED). A key set in the config wins over its variable. As the OpenTelemetry
// spec asks, a variable with a value Tessera does not support is reported and ignored, never fatal.
import { escapeControlCharacters } from '../../../common/text/control-characters.js';
import { httpUrlProblem } from '../../../common/text/http-url.js';
import { withoutUrlCredentials } from '../../../common/text/url-credentials.js';

export const SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;
export type SamplerName = (typeof SAMPLERS)[number];

export interface SamplerSetting {
  readonly name: SamplerName;
  /** Fraction of root traces sampled by the *traceidratio samplers (0..1). */
  readonly ratio: number;
}

export interface TracingSettings {
  /** OTLP/HTTP (JSON) traces URL. */
  readonly endpoint: string;
  readonly sampler: SamplerSetting;
  /** Resource attributes of every span: OTEL_RESOURCE_ATTRIBUTES, then service.name and spiffe.id (always set). */
  readonly resource: Readonly<Record<string, string>>;
}

export interface TracingConfig {
  readonly otlpEndpoint?: string;
  readonly samplerRatio?: number;
  readonly serviceName?: string;
}

export interface ResolvedTracing {
  /** null: tracing is off. */
  readonly settings: TracingSettings | null;
  /** Variables that were set but ignored, with why (the caller logs them). */
  readonly warnings: readonly string[];
}

type Env = Readonly<Record<string, string | undefined>>;

/** Set and not blank (the spec treats an empty value as unset). */
function envValue(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

/** The variable's value refused, as a warning: why it is not an http(s) URL usable as written (the config's rule). */
function urlWarning(name: string, v: string): string | null {
  const problem = httpUrlProblem(v);
  return problem === null ? null : `${name} "${escapeControlCharacters(withoutUrlCredentials(v))}" ${problem}; ignored`;
}

/** OTEL_RESOURCE_ATTRIBUTES: `key=value` pairs separated by commas, values percent-encoded. */
export function parseResourceAttributes(text: string, warnings: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of text.split(',')) {
    if (pair.trim() === '') continue;
    const eq = pair.indexOf('=');
    const key = eq > 0 ? pair.slice(0, eq).trim() : '';
    if (key === '') {
      warnings.push(`OTEL_RESOURCE_ATTRIBUTES: "${pair}" is not key=value; ignored`);
      continue;
    }
    try {
      out[key] = decodeURIComponent(pair.slice(eq + 1).trim());
    } catch {
      warnings.push(`OTEL_RESOURCE_ATTRIBUTES: the value of "${key}" is not valid percent-encoding; ignored`);
    }
  }
  return out;
}

function endpointFromEnv(env: Env, warnings: string[]): string | undefined {
  const traces = envValue(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  if (traces !== undefined) {
    const refused = urlWarning('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', traces);
    if (refused === null) return traces; // the signal-specific URL is used as given
    warnings.push(refused);
  }
  const base = envValue(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  if (base !== undefined) {
    const refused = urlWarning('OTEL_EXPORTER_OTLP_ENDPOINT', base);
    // The base URL gets the signal path appended, as every OpenTelemetry SDK does.
    if (refused === null) return `${base.replace(/\/+$/, '')}/v1/traces`;
    warnings.push(refused);
  }
  return undefined;
}

function samplerFromEnv(env: Env, warnings: string[]): SamplerSetting {
  const raw = envValue(env, 'OTEL_TRACES_SAMPLER')?.toLowerCase();
  let name: SamplerName = 'parentbased_always_on';
  if (raw !== undefined) {
    if ((SAMPLERS as readonly string[]).includes(raw)) name = raw as SamplerName;
    else warnings.push(`OTEL_TRACES_SAMPLER "${raw}" is not supported (${SAMPLERS.join(', ')}); using parentbased_always_on`);
  }
  let ratio = 1;
  const arg = envValue(env, 'OTEL_TRACES_SAMPLER_ARG');
  if (arg !== undefined && name.endsWith('traceidratio')) {
    const n = Number(arg);
    if (Number.isFinite(n) && n >= 0 && n <= 1) ratio = n;
    else warnings.push(`OTEL_TRACES_SAMPLER_ARG "${arg}" is not a number in [0, 1]; using 1`);
  }
  return { name, ratio };
}

/**
 * The exporter's own variables (OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT and _HEADERS), which the OpenTelemetry exporter
 * reads itself and, finding a value it cannot use, drops with no word (its diagnostics go nowhere): checked here as
 * it reads them, so the warning the docs promise is logged (audit 55a F13). A header's text is never quoted: it
 * usually carries a credential.
 */
function exporterWarnings(env: Env, warnings: string[]): void {
  for (const name of ['OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 'OTEL_EXPORTER_OTLP_TIMEOUT']) {
    const v = envValue(env, name);
    if (v === undefined) continue;
    const n = Number(v);
    if (!(Number.isFinite(n) && n > 0)) warnings.push(`${name} "${escapeControlCharacters(v.slice(0, 40))}" is not a positive number of milliseconds; ignored`);
  }
  for (const name of ['OTEL_EXPORTER_OTLP_TRACES_HEADERS', 'OTEL_EXPORTER_OTLP_HEADERS']) {
    const v = envValue(env, name);
    if (v === undefined) continue;
    v.split(',').forEach((entry, i) => {
      if (entry.trim() === '') return;
      const pair = entry.split(';')[0]!;
      const eq = pair.indexOf('=');
      const [key, value] = eq > 0 ? [pair.slice(0, eq).trim(), pair.slice(eq + 1).trim()] : ['', ''];
      let decodes = true;
      try {
        decodeURIComponent(key);
        decodeURIComponent(value);
      } catch {
        decodes = false;
      }
      if (key === '' || value === '') warnings.push(`${name}: entry ${i + 1} is not name=value; that header is not sent`);
      else if (!decodes) warnings.push(`${name}: entry ${i + 1} (${escapeControlCharacters(key.slice(0, 40))}) is not valid percent-encoding; that header is not sent`);
    });
  }
}

/**
 * The tracing in force: the config's `telemetry.tracing` keys where set, else the environment. Tracing is on when
 * an endpoint is known, and off when the environment disables the SDK or the traces exporter (a config endpoint
 * still turns it on: config wins).
 */
export function resolveTracing(config: TracingConfig, env: Env, defaults: { readonly serviceName: string; readonly spiffeId: string }): ResolvedTracing {
  const warnings: string[] = [];
  let endpoint = config.otlpEndpoint;
  if (endpoint === undefined) {
    const sdkDisabled = envValue(env, 'OTEL_SDK_DISABLED')?.toLowerCase();
    // The spec's only values are true and false; anything else is false, and said so.
    if (sdkDisabled !== undefined && sdkDisabled !== 'true' && sdkDisabled !== 'false') warnings.push(`OTEL_SDK_DISABLED "${escapeControlCharacters(sdkDisabled.slice(0, 40))}" is not true or false; using false`);
    const disabled = sdkDisabled === 'true';
    const exporter = envValue(env, 'OTEL_TRACES_EXPORTER')?.toLowerCase();
    if (exporter !== undefined && exporter !== 'otlp' && exporter !== 'none') warnings.push(`OTEL_TRACES_EXPORTER "${exporter}" is not supported (otlp, none); using otlp`);
    if (disabled || exporter === 'none') return { settings: null, warnings };
    endpoint = endpointFromEnv(env, warnings);
  }
  if (endpoint === undefined) return { settings: null, warnings };
  exporterWarnings(env, warnings);
  const sampler: SamplerSetting = config.samplerRatio !== undefined ? { name: 'parentbased_traceidratio', ratio: config.samplerRatio } : samplerFromEnv(env, warnings);
  const attributes = envValue(env, 'OTEL_RESOURCE_ATTRIBUTES');
  const resource = attributes === undefined ? {} : parseResourceAttributes(attributes, warnings);
  const serviceName = config.serviceName ?? envValue(env, 'OTEL_SERVICE_NAME') ?? resource['service.name'] ?? defaults.serviceName;
  // The SPIFFE ID is the proxy's own identity: no variable may claim another.
  return { settings: { endpoint, sampler, resource: { ...resource, 'service.name': serviceName, 'spiffe.id': defaults.spiffeId } }, warnings };
}
