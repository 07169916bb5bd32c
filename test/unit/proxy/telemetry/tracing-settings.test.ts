// resolveTracing: the standard OTEL_* variables configure tracing where the proxy config leaves a key out, the
// config wins where it sets one, and unsupported values are reported and ignored (never fatal).
import { describe, expect, test } from 'vitest';
import { parseResourceAttributes, resolveTracing } from '../../../../proxy/src/telemetry/tracing-settings.js';

const defaults = { serviceName: 'tessera-proxy /ns/app/sa/web', spiffeId: 'spiffe://td/ns/app/sa/web' };

describe('resolveTracing', () => {
  test('the exporter\'s own variables and OTEL_SDK_DISABLED with values it cannot use are warned about (audit 55a F13)', () => {
    const on = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' };
    const warn = (env: Record<string, string>) => resolveTracing({}, { ...on, ...env }, defaults).warnings;
    expect(warn({ OTEL_EXPORTER_OTLP_TIMEOUT: 'abc' })).toEqual(['OTEL_EXPORTER_OTLP_TIMEOUT "abc" is not a positive number of milliseconds; ignored']);
    expect(warn({ OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '-5' })).toEqual(['OTEL_EXPORTER_OTLP_TRACES_TIMEOUT "-5" is not a positive number of milliseconds; ignored']);
    expect(warn({ OTEL_SDK_DISABLED: 'maybe' })).toEqual(['OTEL_SDK_DISABLED "maybe" is not true or false; using false']);
    // A header entry is named by its position, never by its text (it usually carries a credential).
    const headers = warn({ OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20secret,bad,x=%zz' });
    expect(headers).toEqual([
      'OTEL_EXPORTER_OTLP_HEADERS: entry 2 is not name=value; that header is not sent',
      'OTEL_EXPORTER_OTLP_HEADERS: entry 3 (x) is not valid percent-encoding; that header is not sent',
    ]);
    expect(headers.join('\n')).not.toContain('secret');
    // Usable values warn about nothing.
    expect(warn({ OTEL_EXPORTER_OTLP_TIMEOUT: '5000', OTEL_SDK_DISABLED: 'false', OTEL_EXPORTER_OTLP_HEADERS: 'a=1, b=2,' })).toEqual([]);
  });

  test('off without an endpoint anywhere', () => {
    expect(resolveTracing({}, {}, defaults)).toEqual({ settings: null, warnings: [] });
    expect(resolveTracing({ samplerRatio: 0.5, serviceName: 'x' }, { OTEL_SERVICE_NAME: 'y' }, defaults).settings).toBeNull();
  });

  test('OTEL_EXPORTER_OTLP_ENDPOINT is a base URL (/v1/traces appended), the traces variable a full URL that wins', () => {
    expect(resolveTracing({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, defaults).settings?.endpoint).toBe('http://collector:4318/v1/traces');
    expect(resolveTracing({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }, defaults).settings?.endpoint).toBe('http://collector:4318/v1/traces');
    const both = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://b:4318/custom/traces' };
    expect(resolveTracing({}, both, defaults).settings?.endpoint).toBe('https://b:4318/custom/traces');
  });

  test('every config key wins over its variable', () => {
    const env = {
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://env:4318/v1/traces',
      OTEL_SERVICE_NAME: 'from-env',
      OTEL_TRACES_SAMPLER: 'always_off',
      OTEL_SDK_DISABLED: 'true',
    };
    const s = resolveTracing({ otlpEndpoint: 'http://cfg:4318/v1/traces', samplerRatio: 0.25, serviceName: 'from-config' }, env, defaults).settings!;
    expect(s.endpoint).toBe('http://cfg:4318/v1/traces');
    expect(s.sampler).toEqual({ name: 'parentbased_traceidratio', ratio: 0.25 });
    expect(s.resource['service.name']).toBe('from-config');
  });

  test('service.name: OTEL_SERVICE_NAME, then OTEL_RESOURCE_ATTRIBUTES, then the default; spiffe.id is always the own ID', () => {
    const base = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };
    const attrs = 'service.name=from%20attrs,k8s.pod.name=web-1,spiffe.id=spiffe://evil/x';
    expect(resolveTracing({}, { ...base, OTEL_SERVICE_NAME: 'svc', OTEL_RESOURCE_ATTRIBUTES: attrs }, defaults).settings!.resource).toEqual({
      'service.name': 'svc',
      'k8s.pod.name': 'web-1',
      'spiffe.id': defaults.spiffeId,
    });
    expect(resolveTracing({}, { ...base, OTEL_RESOURCE_ATTRIBUTES: attrs }, defaults).settings!.resource['service.name']).toBe('from attrs');
    expect(resolveTracing({}, base, defaults).settings!.resource).toEqual({ 'service.name': defaults.serviceName, 'spiffe.id': defaults.spiffeId });
  });

  test('samplers: the six standard names, the ratio only for *traceidratio, parentbased_always_on by default', () => {
    const base = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };
    expect(resolveTracing({}, base, defaults).settings!.sampler).toEqual({ name: 'parentbased_always_on', ratio: 1 });
    expect(resolveTracing({}, { ...base, OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' }, defaults).settings!.sampler).toEqual({ name: 'traceidratio', ratio: 0.1 });
    expect(resolveTracing({}, { ...base, OTEL_TRACES_SAMPLER: 'ParentBased_TraceIdRatio', OTEL_TRACES_SAMPLER_ARG: '0' }, defaults).settings!.sampler).toEqual({ name: 'parentbased_traceidratio', ratio: 0 });
    expect(resolveTracing({}, { ...base, OTEL_TRACES_SAMPLER: 'always_off' }, defaults).settings!.sampler.name).toBe('always_off');
  });

  test('unsupported or malformed values are warned about and ignored, never fatal', () => {
    const r = resolveTracing(
      {},
      { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'collector:4318', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_SAMPLER: 'jaeger_remote', OTEL_TRACES_SAMPLER_ARG: '2', OTEL_RESOURCE_ATTRIBUTES: 'novalue,=x,ok=1,bad=%E0%A4%A' },
      defaults,
    );
    expect(r.settings!.endpoint).toBe('http://c:4318/v1/traces');
    expect(r.settings!.sampler).toEqual({ name: 'parentbased_always_on', ratio: 1 });
    expect(r.settings!.resource['ok']).toBe('1');
    expect(r.warnings.join('\n')).toMatch(/OTEL_EXPORTER_OTLP_TRACES_ENDPOINT "collector:4318"/);
    expect(r.warnings.join('\n')).toMatch(/OTEL_TRACES_SAMPLER "jaeger_remote"/);
    expect(r.warnings.join('\n')).toMatch(/"bad"/);
    expect(r.warnings.join('\n')).toMatch(/"novalue"/);
    const ratio = resolveTracing({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: 'half' }, defaults);
    expect(ratio.settings!.sampler).toEqual({ name: 'traceidratio', ratio: 1 });
    expect(ratio.warnings).toHaveLength(1);
  });

  // Audit 38b, F8: the config's rule for URLs (common/text/http-url.ts) holds for the variables too.
  test('an endpoint variable the URL parser would repair, or with port 0, is warned about and ignored', () => {
    for (const bad of ['http://c:4318/v1/ traces', 'http://c:4318/v1/\ttraces', 'http://c:0/v1/traces', 'http:c:4318/v1/traces', 'http://c:4318\\v1\\traces']) {
      const r = resolveTracing({}, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: bad, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }, defaults);
      expect(r.settings!.endpoint, bad).toBe('http://c:4318/v1/traces');
      expect(r.warnings, bad).toEqual([expect.stringMatching(/^OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ".*" (holds|has port 0|does not start).*; ignored$/)]);
      const base = resolveTracing({}, { OTEL_EXPORTER_OTLP_ENDPOINT: bad }, defaults);
      expect(base.settings, bad).toBeNull();
      expect(base.warnings, bad).toEqual([expect.stringMatching(/^OTEL_EXPORTER_OTLP_ENDPOINT ".*"/)]);
    }
  });

  test('OTEL_SDK_DISABLED=true and OTEL_TRACES_EXPORTER=none turn env-configured tracing off; blank values count as unset', () => {
    expect(resolveTracing({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'TRUE' }, defaults).settings).toBeNull();
    expect(resolveTracing({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' }, defaults).settings).toBeNull();
    expect(resolveTracing({}, { OTEL_EXPORTER_OTLP_ENDPOINT: '  ', OTEL_SERVICE_NAME: '' }, defaults).settings).toBeNull();
  });

  test('parseResourceAttributes decodes percent-encoding and skips empty pairs', () => {
    const w: string[] = [];
    expect(parseResourceAttributes('a=1,, b = x%2Cy ,c=', w)).toEqual({ a: '1', b: 'x,y', c: '' });
    expect(w).toEqual([]);
  });
});
