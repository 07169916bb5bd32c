// The sidecar's access log and tracing by pod annotation: tessera.dev/access-log, tessera.dev/tracing-endpoint and
// tessera.dev/tracing-sampler-ratio end up in the injected proxy config, which the real proxy config parser
// accepts with exactly those settings; malformed values are refused with the annotation's name.
import { describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { planInjection } from '../../../../control-plane/src/injector/plan-injection.js';
import { SIDECAR_PATHS } from '../../../../control-plane/src/injector/proxy-config.js';
import { parseProxyConfig } from '../../../../proxy/src/config/proxy-config.js';
import { appPod, testContext } from '../../../helpers/injector-fixtures.js';

async function injectedConfig(annotations: Record<string, string>) {
  const plan = planInjection({ pod: appPod({ annotations: { 'tessera.dev/inbound-ports': '8080', ...annotations } }) }, await testContext());
  if (plan.action !== 'inject') throw new Error(`expected inject, got ${plan.action}`);
  const yaml = plan.additions.annotations['tessera.dev/proxy-config']!;
  // Parsed at the path the sidecar reads it from: the parser opens no file, so no temp copy is needed.
  return { yaml, config: parseProxyConfig(yaml, SIDECAR_PATHS.configFile) };
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

  // Audit 38b, F8: a URL the parser repairs into another one (a newline, a tab, a space) or one nothing can be
  // reached at (port 0) was written into the config. The proxy's config parser applies the same rule (one check,
  // common/text/http-url.ts), so what the injector writes is what the proxy takes.
  const unusable = [
    'http://x:4318/v1/traces\nadmin:\n  listen: 0.0.0.0:1',
    'http://x:4318/v1/\ttraces',
    'http://x:4318/v1/ traces',
    'http://x:0/v1/traces',
    'http://x\u200b:4318/v1/traces',
    'http://x:4318\\v1\\traces',
    'http:x:4318/v1/traces',
  ];
  test.each(unusable)('tracing endpoint %j is refused at admission, and by the proxy config parser', async (endpoint) => {
    const r = await refusal({ 'tessera.dev/tracing-endpoint': endpoint });
    expect(r.code).toBe('TESSERA_ERR_INJECT_BAD_ANNOTATION');
    expect(r.message).toMatch(/^annotation tessera\.dev\/tracing-endpoint: ".*" (holds|has port 0|does not start)/);
    expect(r.message).not.toMatch(/[\n\r]/);
    const { yaml } = await injectedConfig({ 'tessera.dev/tracing-endpoint': 'http://placeholder:4318/v1/traces' });
    const edited = yaml.replace('http://placeholder:4318/v1/traces', JSON.stringify(endpoint));
    expect(() => parseProxyConfig(edited, SIDECAR_PATHS.configFile)).toThrowError(expect.objectContaining({ code: 'TESSERA_ERR_CONFIG_INVALID', message: expect.stringContaining('telemetry.tracing.otlpEndpoint') }));
  });

  test('the audit\'s newline case names the character, and a value only padded with blanks is taken trimmed', async () => {
    expect((await refusal({ 'tessera.dev/tracing-endpoint': unusable[0]! })).message).toBe(
      'annotation tessera.dev/tracing-endpoint: "http://x:4318/v1/traces\\x0aadmin:\\x0a  listen: 0.0.0.0:1" holds U+000A (a control, invisible or space character) at offset 23; a URL parser would drop or encode it: give an http(s) URL such as http://otel-collector.observability:4318/v1/traces',
    );
    const { config } = await injectedConfig({ 'tessera.dev/tracing-endpoint': ' http://otel:4318/v1/traces\n' });
    expect(config.telemetry.tracing).toEqual({ otlpEndpoint: 'http://otel:4318/v1/traces' });
  });
});
