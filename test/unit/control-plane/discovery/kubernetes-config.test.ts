// The `discovery.kubernetes` block: off unless enabled, in-cluster defaults (the API server from the kubelet's
// variables, the service-account token and CA), paths relative to the config file, and the schema's refusals
// through the real control-plane config loader.
import { describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { parseControlPlaneConfig } from '../../../../control-plane/src/config/cp-config.js';
import { defaultsOf } from '../../../../common/config/validate-yaml.js';
import { KUBERNETES_DISCOVERY_SCHEMA, type KubernetesDiscoveryInput, resolveKubernetesDiscovery } from '../../../../control-plane/src/discovery/kubernetes-config.js';

const SA = '/var/run/secrets/kubernetes.io/serviceaccount';
/** The block left out or written empty, as the schema gives it: every default filled in. */
const DEFAULTS = defaultsOf<KubernetesDiscoveryInput>(KUBERNETES_DISCOVERY_SCHEMA);
const ON = { ...DEFAULTS, enabled: true };

describe('resolveKubernetesDiscovery', () => {
  test('absent or not enabled: no source', () => {
    expect(resolveKubernetesDiscovery(DEFAULTS, '/etc/tessera', {})).toBeUndefined();
    expect(resolveKubernetesDiscovery({ ...DEFAULTS, apiServer: 'https://k8s:6443' }, '/etc/tessera', {})).toBeUndefined();
  });

  test('in-cluster defaults: the API server from KUBERNETES_SERVICE_HOST/PORT, the service-account token and CA', () => {
    expect(resolveKubernetesDiscovery(ON, '/etc/tessera', { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' })).toEqual({
      apiServer: 'https://10.96.0.1:443',
      tokenFile: `${SA}/token`,
      caFile: `${SA}/ca.crt`,
      namespaces: [],
      inboundPort: 15006,
      debounceMs: 100,
      syncTimeoutMs: 30_000,
    });
    expect(resolveKubernetesDiscovery(ON, '/', { KUBERNETES_SERVICE_HOST: 'fd00:10:96::1', KUBERNETES_SERVICE_PORT: '6443' })!.apiServer).toBe('https://[fd00:10:96::1]:6443');
    expect(resolveKubernetesDiscovery(ON, '/', { KUBERNETES_SERVICE_HOST: '10.96.0.1' })!.apiServer).toBe('https://10.96.0.1:443');
    expect(resolveKubernetesDiscovery(ON, '/', {})!.apiServer).toBe('https://kubernetes.default.svc');
  });

  test('configured values win; relative files are resolved against the config directory; namespaces deduplicated', () => {
    const c = resolveKubernetesDiscovery(
      { enabled: true, apiServer: 'https://api.example:6443/', tokenFile: 'token', caFile: '../ca.crt', namespaces: ['a', 'b', 'a'], inboundPort: 16000, debounce: 0, syncTimeout: 5_000 },
      '/etc/tessera',
      { KUBERNETES_SERVICE_HOST: '10.96.0.1' },
    );
    expect(c).toEqual({ apiServer: 'https://api.example:6443', tokenFile: '/etc/tessera/token', caFile: '/etc/ca.crt', namespaces: ['a', 'b'], inboundPort: 16000, debounceMs: 0, syncTimeoutMs: 5_000 });
  });
});

describe('discovery.kubernetes in the control-plane config', () => {
  const base = ['trustDomain: example.org', 'dataDir: ./data', 'discovery:', '  kubernetes:'];
  const parse = (...lines: string[]) => parseControlPlaneConfig([...base, ...lines.map((l) => `    ${l}`), ''].join('\n'), '/etc/tessera/cp.yaml', { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' });

  test('parsed and resolved with the loader\'s environment', () => {
    const c = parse('enabled: true', 'namespaces: [shop, other]', 'debounce: 250ms');
    expect((c as unknown as { discovery: { kubernetes?: unknown } }).discovery.kubernetes).toEqual({ apiServer: 'https://10.0.0.1:443', tokenFile: `${SA}/token`, caFile: `${SA}/ca.crt`, namespaces: ['shop', 'other'], inboundPort: 15006, debounceMs: 250, syncTimeoutMs: 30_000 });
  });

  test.each([
    [['enabled: true', 'apiServer: http://10.0.0.1:8080'], 'discovery.kubernetes.apiServer'],
    [['enabled: true', 'namespaces: [Shop]'], 'discovery.kubernetes.namespaces'],
    [['enabled: true', 'inboundPort: 70000'], 'discovery.kubernetes.inboundPort'],
    [['enabled: true', 'debounce: 2m'], 'discovery.kubernetes.debounce'],
    [['enabled: true', 'labelSelector: app=x'], 'discovery.kubernetes.labelSelector'],
  ])('%j is refused naming the key', (lines, key) => {
    try {
      parse(...lines);
    } catch (e) {
      expect(isTesseraError(e, 'TESSERA_ERR_CONFIG_INVALID')).toBe(true);
      expect((e as Error).message).toContain(key);
      return;
    }
    throw new Error('expected a refusal');
  });
});
