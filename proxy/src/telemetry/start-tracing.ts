// Turns tracing on or leaves it off: the config's telemetry.tracing, else the standard OTEL_* variables; ignored
// variables are logged; the OpenTelemetry SDK is imported only when tracing is on.
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import { withoutUrlCredentials } from '../../../common/text/url-credentials.js';
import { reportSpanOutcomes } from './span-outcome-report.js';
import type { RequestTracer } from './tracing.js';
import { resolveTracing, type TracingConfig } from './tracing-settings.js';

export async function startTracing(config: TracingConfig, env: Readonly<Record<string, string | undefined>>, id: SpiffeId, log: Logger, registry: Registry): Promise<RequestTracer | null> {
  const tracing = resolveTracing(config, env, { serviceName: `tessera-proxy ${id.path}`, spiffeId: id.toString() });
  for (const w of tracing.warnings) log.warn({ detail: w }, 'tracing environment variable ignored');
  if (!tracing.settings) return null;
  const tracer = (await import('./tracing.js')).createRequestTracer({ ...tracing.settings, onSpans: reportSpanOutcomes(registry, log) });
  log.info({ endpoint: withoutUrlCredentials(tracing.settings.endpoint), sampler: tracing.settings.sampler, serviceName: tracing.settings.resource['service.name'] }, 'tracing on');
  return tracer;
}
