// One rule for where the control plane finds the Kubernetes API (audit 27c F3): attestation
// (`attestors.kubernetes.apiServer`) and discovery (`discovery.kubernetes`) take the same default from the kubelet's
// KUBERNETES_SERVICE_HOST/PORT (else the Service's DNS name), drop a trailing `/` and refuse a URL that is not https,
// through the real control-plane config loader.
import { describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { inClusterDefaults } from '../../../../control-plane/src/attestation/k8s-api-fetch.js';
import { parseControlPlaneConfig } from '../../../../control-plane/src/config/cp-config.js';

const SA = '/var/run/secrets/kubernetes.io/serviceaccount';
type Env = Record<string, string>;

/** Both blocks enabled, each with `apiServer` lines of its own. */
function parse(env: Env, attestLines: string[] = [], discoveryLines: string[] = []) {
  const text = [
    'trustDomain: example.org',
    'dataDir: ./data',
    'attestors:',
    '  kubernetes:',
    '    issuer: https://kubernetes.default.svc.cluster.local',
    '    audience: tessera',
    `    apiServer: {${attestLines.join(', ')}}`,
    'discovery:',
    '  kubernetes:',
    '    enabled: true',
    ...discoveryLines.map((l) => `    ${l}`),
    '',
  ].join('\n');
  const c = parseControlPlaneConfig(text, '/etc/tessera/cp.yaml', env);
  const k8sApi = c.attestors.kubernetes?.apiServer;
  const discovery = (c as unknown as { discovery: { kubernetes?: { apiServer: string; caFile: string; tokenFile: string } } }).discovery.kubernetes;
  return { attestation: { url: k8sApi?.url, caFile: k8sApi?.caFile, tokenFile: k8sApi?.tokenFile }, discovery: { url: discovery?.apiServer, caFile: discovery?.caFile, tokenFile: discovery?.tokenFile } };
}

describe('in-cluster Kubernetes API defaults', () => {
  test.each([
    [{ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, 'https://10.96.0.1:443'],
    [{ KUBERNETES_SERVICE_HOST: 'fd00:10:96::1', KUBERNETES_SERVICE_PORT: '6443' }, 'https://[fd00:10:96::1]:6443'],
    [{ KUBERNETES_SERVICE_HOST: '10.96.0.1' }, 'https://10.96.0.1:443'],
    [{}, 'https://kubernetes.default.svc'],
  ])('env %j: attestation and discovery both use %s and the service-account files', (env: Env, url) => {
    const files = { caFile: `${SA}/ca.crt`, tokenFile: `${SA}/token` };
    expect(parse(env)).toEqual({ attestation: { url, ...files }, discovery: { url, ...files } });
    expect(inClusterDefaults(env)).toEqual({ apiServer: url, ...files });
  });

  test('a configured URL wins in both, without its trailing slash', () => {
    const p = parse({ KUBERNETES_SERVICE_HOST: '10.96.0.1' }, ['url: https://api.example:6443/'], ['apiServer: https://api.example:6443//']);
    expect(p.attestation.url).toBe('https://api.example:6443');
    expect(p.discovery.url).toBe('https://api.example:6443');
  });

  test.each([
    [['url: http://10.0.0.1:8080'], [], 'attestors.kubernetes.apiServer.url'],
    [[], ['apiServer: http://10.0.0.1:8080'], 'discovery.kubernetes.apiServer'],
  ])('a URL that is not https is refused naming the key (%j %j)', (attestLines, discoveryLines, key) => {
    let err: unknown;
    try {
      parse({}, attestLines, discoveryLines);
    } catch (e) {
      err = e;
    }
    expect(isTesseraError(err, 'TESSERA_ERR_CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toContain(key);
  });
});
