// The one reading of Kubernetes-style service names (control plane's default rule and the forward proxy's hosts),
// checked against what kube-dns resolves from a pod of namespace `web` (search path web.svc.cluster.local,
// svc.cluster.local, cluster.local): each variant with the service and namespace it reaches, or none.
import { describe, expect, test } from 'vitest';
import { canonicalServiceName, parseKubernetesServiceName } from '../../../../common/routing/kubernetes-service-name.js';

describe('parseKubernetesServiceName, as kube-dns resolves', () => {
  test.each([
    // name as the app writes it → [service, namespace] (undefined: the caller's own namespace)
    ['api', 'api', undefined],
    ['api.shop', 'api', 'shop'],
    ['api.shop.svc', 'api', 'shop'],
    ['api.shop.svc.cluster.local', 'api', 'shop'],
    ['api.shop.svc.cluster.local.', 'api', 'shop'],
    // `X.svc` is X in namespace svc (found as X.svc.svc.cluster.local), not X in the default namespace.
    ['api.svc', 'api', 'svc'],
    ['api.svc.svc', 'api', 'svc'],
    ['api.svc.svc.cluster.local', 'api', 'svc'],
    // Case does not matter to DNS.
    ['API.Shop.SVC.Cluster.Local', 'api', 'shop'],
    ['API', 'api', undefined],
    // Hyphens and digits as Kubernetes allows them (DNS-1123 labels).
    ['api-v2.shop-1', 'api-v2', 'shop-1'],
  ])('%j → service %j in %j', (name, service, namespace) => {
    expect(parseKubernetesServiceName(name)).toEqual({ service, namespace });
  });

  test.each([
    // Namespace-level names: no service record.
    'api.svc.cluster.local',
    'svc.cluster.local',
    'shop.svc.cluster.local.',
    // A final dot makes the name absolute: the search path does not apply.
    'api.',
    'api.shop.',
    'api.shop.svc.',
    // Another cluster domain, or a made-up suffix after svc.
    'api.shop.svc.cluster',
    'api.shop.svc.corp.example',
    'api.shop.svc.f17',
    'api.shop.cluster.local',
    // Too many labels (a headless service's pod record is not modelled), or not a label.
    'pod.api.shop.svc.cluster.local',
    'a.b.c',
    'a.b.c.d',
    '',
    '.',
    'api..shop',
    '.api',
    '-api',
    'api-',
    'ap_i',
    `${'a'.repeat(64)}.shop`,
  ])('%j names no service', (name) => {
    expect(parseKubernetesServiceName(name)).toBeNull();
  });

  test('a custom cluster domain is read instead of cluster.local', () => {
    expect(parseKubernetesServiceName('api.shop.svc.corp.example', 'corp.example')).toEqual({ service: 'api', namespace: 'shop' });
    expect(parseKubernetesServiceName('api.shop.svc.corp.example.', 'corp.example.')).toEqual({ service: 'api', namespace: 'shop' });
    expect(parseKubernetesServiceName('api.shop.svc.cluster.local', 'corp.example')).toBeNull();
    expect(parseKubernetesServiceName('api.svc.corp.example', 'corp.example')).toBeNull();
  });

  test('the canonical mesh name is <service>.<namespace>; a bare name has none', () => {
    expect(canonicalServiceName(parseKubernetesServiceName('api.shop.svc.cluster.local')!)).toBe('api.shop');
    expect(canonicalServiceName(parseKubernetesServiceName('api.svc')!)).toBe('api.svc');
    expect(canonicalServiceName(parseKubernetesServiceName('api')!)).toBeNull();
  });
});
