// Sidecar settings that parse but that the API server would refuse in every injected pod (audit 32a F4): negative
// requests or limits, a limit below its request, a podBindAddress that is no IP. resolveInjectorConfig refuses them
// naming the key; the standalone injector's file and the control plane's `injector:` block name the line as well.
import { expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { parseControlPlaneConfig } from '../../../../control-plane/src/config/cp-config.js';
import { parseQuantity, resolveInjectorConfig } from '../../../../control-plane/src/injector/injector-config.js';
import { parseInjectorFileConfig } from '../../../../control-plane/src/injector/injector-file-config.js';

const BASE = { proxyImage: 'registry.example/tessera:1', controlPlaneAddress: 'cp.tessera-system.svc:8443' };
type Input = Parameters<typeof resolveInjectorConfig>[0];

function refusedKey(over: object): { key: unknown; message: string } {
  try {
    resolveInjectorConfig({ ...BASE, ...over } as Input);
  } catch (e) {
    if (isTesseraError(e, 'TESSERA_ERR_INJECT_BAD_CONFIG')) return { key: e.details['key'], message: e.message };
    throw e;
  }
  throw new Error(`accepted: ${JSON.stringify(over)}`);
}

test.each([
  [{ resources: { requests: { memory: '-64Mi' } } }, 'injector.resources.requests.memory', /negative/],
  [{ resources: { requests: { cpu: '-1' } } }, 'injector.resources.requests.cpu', /negative/],
  [{ resources: { limits: { memory: '-1Gi' } } }, 'injector.resources.limits.memory', /negative/],
  [{ resources: { limits: { cpu: '-.5' } } }, 'injector.resources.limits.cpu', /negative/],
  [{ resources: { requests: { memory: '-1e3' } } }, 'injector.resources.requests.memory', /negative/],
  [{ resources: { requests: { memory: '512Mi' }, limits: { memory: '1Mi' } } }, 'injector.resources.limits.memory', /limit 1Mi is below its request 512Mi/],
  [{ resources: { requests: { cpu: '1' }, limits: { cpu: '999m' } } }, 'injector.resources.limits.cpu', /below/],
  // Against the defaults: a request above the default 256Mi limit, a limit below the default 128Mi / 50m request.
  [{ resources: { requests: { memory: '512Mi' } } }, 'injector.resources.requests.memory', /limit 256Mi \(the default\)/],
  [{ resources: { limits: { memory: '64Mi' } } }, 'injector.resources.limits.memory', /request 128Mi \(the default\)/],
  [{ resources: { limits: { cpu: '10m' } } }, 'injector.resources.limits.cpu', /request 50m \(the default\)/],
  // Not Kubernetes' grammar (upper-case K is not a decimal suffix; ki is not binary; no digits).
  [{ resources: { requests: { memory: '64K' } } }, 'injector.resources.requests.memory', /not a Kubernetes quantity/],
  [{ resources: { requests: { memory: '64ki' } } }, 'injector.resources.requests.memory', /not a Kubernetes quantity/],
  [{ resources: { requests: { cpu: '.' } } }, 'injector.resources.requests.cpu', /not a Kubernetes quantity/],
  [{ resources: { requests: { cpu: 'm' } } }, 'injector.resources.requests.cpu', /not a Kubernetes quantity/],
  [{ resources: { requests: { cpu: '1e' } } }, 'injector.resources.requests.cpu', /not a Kubernetes quantity/],
  [{ podBindAddress: '999.1.1.1' }, 'injector.podBindAddress', /not an IP address/],
  [{ podBindAddress: 'localhost' }, 'injector.podBindAddress', /not an IP address/],
  [{ podBindAddress: '::' }, 'injector.podBindAddress', /not an IP address/],
  [{ podBindAddress: '[::' }, 'injector.podBindAddress', /not an IP address/],
  [{ podBindAddress: '[1.2.3.4]' }, 'injector.podBindAddress', /not an IP address/],
])('%j is refused naming %s', (over, key, message) => {
  const r = refusedKey(over);
  expect(r.key).toBe(key);
  expect(r.message.startsWith(`${key}:`)).toBe(true);
  expect(r.message).toMatch(message);
});

test.each([
  [{ resources: { requests: { cpu: '0', memory: '0' } } }],
  [{ resources: { requests: { memory: '256Mi' } } }],
  [{ resources: { requests: { memory: '512Mi' }, limits: { memory: '1Gi' } } }],
  [{ resources: { requests: { memory: '1Gi' }, limits: { memory: '1073741824' } } }],
  [{ resources: { requests: { memory: '1000k' }, limits: { memory: '1M' } } }],
  [{ resources: { requests: { cpu: '100m' }, limits: { cpu: '0.1' } } }],
  [{ resources: { requests: { cpu: '300m' }, limits: { cpu: '.3' } } }],
  [{ resources: { requests: { cpu: '1.5' }, limits: { cpu: '2' } } }],
  [{ resources: { requests: { cpu: '500u', memory: '1e8' }, limits: { cpu: '1E-3', memory: '+128Mi' } } }],
  [{ resources: { requests: { memory: '1Ki' }, limits: { memory: '1E' } } }],
  [{ podBindAddress: '0.0.0.0' }],
  [{ podBindAddress: '10.1.2.3' }],
  [{ podBindAddress: '[::]' }],
  [{ podBindAddress: '[fd00::1]' }],
])('%j is accepted', (over) => {
  const c = resolveInjectorConfig({ ...BASE, ...over } as Input);
  expect(c.proxyImage).toBe(BASE.proxyImage);
});

test('quantities compare exactly across suffixes', () => {
  const value = (q: string) => {
    const a = parseQuantity(q)!;
    return Number(a.num) / Number(a.den);
  };
  expect(value('1Gi')).toBe(2 ** 30);
  expect(value('1.5Ki')).toBe(1536);
  expect(value('250m')).toBe(0.25);
  expect(value('2e3')).toBe(2000);
  expect(value('1n')).toBe(1e-9);
  expect(parseQuantity('1.2.3')).toBeUndefined();
  expect(parseQuantity('')).toBeUndefined();
});

test('the standalone injector file names the file, line and key', () => {
  const head = 'certFile: /x/tls.crt\nkeyFile: /x/tls.key\nbundleFile: /x/b.pem\ncontrolPlaneAddress: cp.svc:8443\nproxyImage: reg.example/t:1\n';
  const refuse = (extra: string) => {
    try {
      parseInjectorFileConfig(`${head}${extra}`, '/x/injector.yaml', { version: '0.1.0' });
    } catch (e) {
      if (isTesseraError(e, 'TESSERA_ERR_CONFIG_INVALID')) return { key: e.details['key'], line: e.details['line'], message: e.message };
      throw e;
    }
    throw new Error(`accepted: ${extra}`);
  };
  expect(refuse('resources:\n  requests:\n    memory: "-64Mi"\n')).toMatchObject({ key: 'resources.requests.memory', line: 8 });
  const below = refuse('resources:\n  requests:\n    memory: 512Mi\n  limits:\n    memory: 1Mi\n');
  expect(below).toMatchObject({ key: 'resources.limits.memory', line: 10 });
  expect(below.message).toMatch(/^\/x\/injector\.yaml:10: resources\.limits\.memory: the memory limit 1Mi is below its request 512Mi/);
  expect(refuse('logLevel: info\npodBindAddress: "999.1.1.1"\n')).toMatchObject({ key: 'podBindAddress', line: 7 });
  expect(parseInjectorFileConfig(`${head}podBindAddress: "[::]"\n`, '/x/injector.yaml', { version: '0.1.0' }).settings.podBindAddress).toBe('[::]');
});

test("the control plane's embedded injector: block gets the same checks, at its line", () => {
  const cp = (block: string) => parseControlPlaneConfig(`trustDomain: a.test\ndataDir: ./d\ninjector:\n  enabled: true\n  certFile: t.crt\n  keyFile: t.key\n  proxyImage: reg.example/t:1\n  controlPlaneAddress: cp.svc:8443\n${block}`, '/etc/tessera/cp.yaml', {});
  const refuse = (block: string) => {
    try {
      cp(block);
    } catch (e) {
      if (isTesseraError(e, 'TESSERA_ERR_CONFIG_INVALID')) return { key: e.details['key'], line: e.details['line'], message: e.message };
      throw e;
    }
    throw new Error(`accepted: ${block}`);
  };
  expect(refuse('  resources: { requests: { cpu: "-1" } }\n')).toMatchObject({ key: 'injector.resources.requests.cpu', line: 9 });
  expect(refuse('  resources:\n    limits:\n      memory: 1Mi\n')).toMatchObject({ key: 'injector.resources.limits.memory', line: 11 });
  expect(refuse('  podBindAddress: 999.1.1.1\n')).toMatchObject({ key: 'injector.podBindAddress', line: 9 });
  expect(cp('  resources: { requests: { memory: 64Mi }, limits: { memory: 128Mi } }\n').injector?.settings.resources.limits.memory).toBe('128Mi');
});
