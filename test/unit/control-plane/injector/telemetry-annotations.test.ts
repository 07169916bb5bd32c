// The sidecar's access log and tracing by pod annotation: tessera.dev/access-log, tessera.dev/tracing-endpoint and
// tessera.dev/tracing-sampler-ratio end up in the injected proxy config, which the real proxy config parser
// accepts with exactly those settings; malformed values are refused with the annotation's name.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { planInjection } from '../../../../control-plane/src/injector/plan-injection.js';
import { parseProxyConfig } from '../../../../proxy/src/config/proxy-config.js';
import { appPod, testContext } from '../../../helpers/injector-fixtures.js';

async function injectedConfig(annotations: Record<string, string>) {
  const plan = planInjection({ pod: appPod({ annotations: { 'tessera.dev/inbound-ports': '8080', ...annotations } }) }, await testContext());
  if (plan.action !== 'inject') throw new Error(`expected inject, got ${plan.action}`);
  const yaml = plan.additions.annotations['tessera.dev/proxy-config']!;
  // The config names files the parser does not open; a directory for relative paths is enough.
  const dir = mkdtempSync(join(tmpdir(), 'tessera-inject-'));
  writeFileSync(join(dir, 'proxy.yaml'), yaml);
  return { yaml, config: parseProxyConfig(yaml, join(dir, 'proxy.yaml')) };
}

async function refusal(annotations: Record<string, string>): Promise<{ code: string; message: string }> {
  try {
    await injectedConfig(annotations);
  } catch (e) {
    if (isTesseraError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('telemetry annotations', () => {
  test('without them the injected config has no telemetry section (proxy defaults and OTEL_* apply)', async () => {
    const { yaml, config } = await injectedConfig({});
    expect(yaml).not.toContain('telemetry');
    expect(config.telemetry).toEqual({ accessLog: 'stdout', tracing: {} });
  });

  test('tracing on with an endpoint and a ratio; the access log off', async () => {
    const { config } = await injectedConfig({
      'tessera.dev/tracing-endpoint': 'http://otel-collector.observability:4318/v1/traces',
      'tessera.dev/tracing-sampler-ratio': '0.25',
      'tessera.dev/access-log': 'off',
    });
    expect(config.telemetry).toEqual({ accessLog: 'off', tracing: { otlpEndpoint: 'http://otel-collector.observability:4318/v1/traces', samplerRatio: 0.25 } });
  });

  test.each([['on'], ['true'], ['Enabled']])('access-log "%s" turns it on (stdout)', async (v) => {
    expect((await injectedConfig({ 'tessera.dev/access-log': v })).config.telemetry.accessLog).toBe('stdout');
  });

  test.each([
    [{ 'tessera.dev/access-log': 'json' }, 'tessera.dev/access-log'],
    [{ 'tessera.dev/tracing-endpoint': 'otel-collector:4318' }, 'tessera.dev/tracing-endpoint'],
    [{ 'tessera.dev/tracing-endpoint': 'grpc://otel:4317' }, 'tessera.dev/tracing-endpoint'],
    [{ 'tessera.dev/tracing-endpoint': 'http://user:pw@otel:4318/v1/traces' }, 'tessera.dev/tracing-endpoint'],
    [{ 'tessera.dev/tracing-sampler-ratio': '0.5' }, 'tessera.dev/tracing-sampler-ratio'],
    [{ 'tessera.dev/tracing-endpoint': 'http://otel:4318/v1/traces', 'tessera.dev/tracing-sampler-ratio': '1.5' }, 'tessera.dev/tracing-sampler-ratio'],
    [{ 'tessera.dev/tracing-endpoint': 'http://otel:4318/v1/traces', 'tessera.dev/tracing-sampler-ratio': '0x1' }, 'tessera.dev/tracing-sampler-ratio'],
    [{ 'tessera.dev/tracing-endpoint': 'http://otel:4318/v1/traces', 'tessera.dev/tracing-sampler-ratio': '' }, 'tessera.dev/tracing-sampler-ratio'],
  ])('%o is refused naming %s', async (annotations, name) => {
    const r = await refusal(annotations);
    expect(r.code).toBe('TESSERA_ERR_INJECT_BAD_ANNOTATION');
    expect(r.message).toContain(`annotation ${name}:`);
  });
});
