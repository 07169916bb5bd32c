// tessera.dev/inbound-mtls: an injected sidecar's inbound listeners in permissive mode (migration to mTLS) by pod
// annotation; the injected config parses with the real proxy config parser; strict stays the default; values the
// proxy would refuse (other words, permissive on HTTP/2 or gRPC ports) are refused at admission, naming the annotation.
import { describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { planInjection } from '../../../../control-plane/src/injector/plan-injection.js';
import { SIDECAR_PATHS } from '../../../../control-plane/src/injector/proxy-config.js';
import { parseProxyConfig } from '../../../../proxy/src/config/proxy-config.js';
import { appPod, testContext } from '../../../helpers/injector-fixtures.js';

async function injected(annotations: Record<string, string>) {
  const plan = planInjection({ pod: appPod({ annotations }) }, await testContext());
  if (plan.action !== 'inject') throw new Error(`expected inject, got ${plan.action}`);
  const yaml = plan.additions.annotations['tessera.dev/proxy-config']!;
  return { yaml, config: parseProxyConfig(yaml, SIDECAR_PATHS.configFile) };
}

describe('tessera.dev/inbound-mtls', () => {
  test('absent or strict: every inbound listener is strict and the config does not mention it', async () => {
    for (const extra of [{}, { 'tessera.dev/inbound-mtls': 'strict' }] as Record<string, string>[]) {
      const { yaml, config } = await injected({ 'tessera.dev/inbound-ports': '8080,7000/tcp', ...extra });
      expect(yaml).not.toContain('mtls');
      expect(config.inbound.map((l) => l.mtls)).toEqual(['strict', 'strict']);
    }
  });

  test('permissive: every inbound listener (http and tcp) is permissive', async () => {
    const { config } = await injected({ 'tessera.dev/inbound-ports': '8080,7000/tcp', 'tessera.dev/inbound-mtls': 'permissive' });
    expect(config.inbound.map((l) => [l.name, l.mtls])).toEqual([
      ['app-8080', 'permissive'],
      ['app-7000', 'permissive'],
    ]);
  });

  test.each([
    [{ 'tessera.dev/inbound-ports': '8080', 'tessera.dev/inbound-mtls': 'PERMISSIVE' }, /"PERMISSIVE" is not strict or permissive/],
    [{ 'tessera.dev/inbound-ports': '8080', 'tessera.dev/inbound-mtls': 'off' }, /"off" is not strict or permissive/],
    [{ 'tessera.dev/inbound-ports': '8080,9090/grpc', 'tessera.dev/inbound-mtls': 'permissive' }, /port 9090 is grpc/],
    [{ 'tessera.dev/inbound-ports': '8080', 'tessera.dev/inbound-protocol': 'http2', 'tessera.dev/inbound-mtls': 'permissive' }, /port 8080 is http2/],
  ])('%o is refused naming the annotation', async (annotations, message) => {
    const e = await injected(annotations).then(
      () => null,
      (err: unknown) => err,
    );
    expect(isTesseraError(e) && e.code).toBe('TESSERA_ERR_INJECT_BAD_ANNOTATION');
    expect((e as Error).message).toMatch(/^annotation tessera\.dev\/inbound-mtls: /);
    expect((e as Error).message).toMatch(message);
  });
});
