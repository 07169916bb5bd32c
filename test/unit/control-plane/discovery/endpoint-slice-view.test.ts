// The EndpointSlice + Pod → source view mapping: names, SPIFFE IDs, readiness, protocols, zones, ports and what is
// left out (and counted).
import { describe, expect, test } from 'vitest';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { type EndpointSliceObject, type PodFacts, endpointSliceView, podFacts, portProtocol } from '../../../../control-plane/src/discovery/endpoint-slice-view.js';

const TD = TrustDomain.parse('example.org');
const OPTS = { trustDomain: TD, inboundPort: 15006 };

function slice(name: string, ns: string, svc: string | undefined, endpoints: NonNullable<EndpointSliceObject['endpoints']>, extra: Partial<EndpointSliceObject> = {}): EndpointSliceObject {
  return { metadata: { name, namespace: ns, labels: svc ? { 'kubernetes.io/service-name': svc } : {} }, addressType: 'IPv4', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints, ...extra };
}
function ep(ip: string, pod: string, conditions: { ready?: boolean | null; terminating?: boolean | null } = { ready: true }, zone?: string, ns?: string) {
  return { addresses: [ip], conditions, targetRef: { kind: 'Pod', name: pod, ...(ns ? { namespace: ns } : {}) }, ...(zone ? { zone } : {}) };
}
function pods(...list: PodFacts[]): Map<string, PodFacts> {
  return new Map(list.map((p) => [`${p.namespace}/${p.name}`, p]));
}
const pod = (ns: string, name: string, sa: string, inboundPort?: string, meshed = true): PodFacts => ({ namespace: ns, name, serviceAccountName: sa, ...(inboundPort !== undefined ? { inboundPort } : {}), meshed });

describe('endpointSliceView', () => {
  test('names the service <service>.<namespace>, one endpoint per pod at the inbound port, SPIFFE ID from ns + service account', () => {
    const { view, skipped } = endpointSliceView(
      [slice('api-abc', 'shop', 'api', [ep('10.0.0.2', 'api-1', { ready: true }, 'zone-a'), ep('10.0.0.3', 'api-2')])],
      pods(pod('shop', 'api-1', 'api-sa'), pod('shop', 'api-2', 'api-sa')),
      OPTS,
    );
    expect([...view.keys()]).toEqual(['api.shop']);
    expect(view.get('api.shop')).toEqual([
      { host: '10.0.0.2', port: 15006, spiffeId: 'spiffe://example.org/ns/shop/sa/api-sa', protocol: 'http', ready: true, zone: 'zone-a', weight: 100, source: 'kubernetes' },
      { host: '10.0.0.3', port: 15006, spiffeId: 'spiffe://example.org/ns/shop/sa/api-sa', protocol: 'http', ready: true, zone: '', weight: 100, source: 'kubernetes' },
    ]);
    expect(skipped).toEqual({ unknownPod: 0, noServiceAccount: 0, badInboundPort: 0, portNotMeshed: 0, notMeshed: 0 });
  });

  test('only pods with a sidecar (injected, or annotated with their inbound port) are endpoints; the others are counted', () => {
    const facts = (annotations: Record<string, string>) => podFacts({ metadata: { namespace: 'n', name: Object.keys(annotations).join() || 'plain', annotations }, spec: { serviceAccountName: 'sa' } });
    const injected = facts({ 'tessera.dev/injected': '0.1.0' });
    const own = facts({ 'tessera.dev/inbound-port': '15006' });
    const plain = facts({});
    expect([injected.meshed, own.meshed, plain.meshed]).toEqual([true, true, false]);
    expect(podFacts({ metadata: { namespace: 'n', name: 'x', annotations: null }, spec: {} }).meshed).toBe(false);
    const { view, skipped } = endpointSliceView(
      [slice('s', 'n', 'svc', [ep('10.0.0.1', injected.name), ep('10.0.0.2', own.name), ep('10.0.0.3', plain.name)])],
      pods(injected, own, plain),
      OPTS,
    );
    expect(view.get('svc.n')!.map((e) => e.host)).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(skipped.notMeshed).toBe(1);
  });

  test('the pod namespace of the targetRef decides the SPIFFE ID; slices of one service merge; services are separate', () => {
    const { view } = endpointSliceView(
      [slice('web-1', 'a', 'web', [ep('10.0.1.1', 'w1')]), slice('web-2', 'a', 'web', [ep('10.0.1.2', 'w2', { ready: true }, undefined, 'a')]), slice('web-x', 'b', 'web', [ep('10.0.2.1', 'w1')])],
      pods(pod('a', 'w1', 'web'), pod('a', 'w2', 'other'), pod('b', 'w1', 'web-b')),
      OPTS,
    );
    expect([...view.keys()]).toEqual(['web.a', 'web.b']);
    expect(view.get('web.a')!.map((e) => `${e.host} ${e.spiffeId}`)).toEqual(['10.0.1.1 spiffe://example.org/ns/a/sa/web', '10.0.1.2 spiffe://example.org/ns/a/sa/other']);
    expect(view.get('web.b')!.map((e) => e.spiffeId)).toEqual(['spiffe://example.org/ns/b/sa/web-b']);
  });

  test.each([
    [{ ready: true }, true],
    [{ ready: false }, false],
    [{}, true], // Kubernetes: a missing ready condition means ready
    [{ ready: null }, true],
    [{ ready: true, terminating: true }, false],
    [{ ready: false, terminating: true }, false],
    [{ ready: true, terminating: false }, true],
  ])('conditions %j → ready %s', (conditions, ready) => {
    const { view } = endpointSliceView([slice('s', 'n', 'svc', [ep('10.0.0.9', 'p', conditions)])], pods(pod('n', 'p', 'sa')), OPTS);
    expect(view.get('svc.n')![0]!.ready).toBe(ready);
  });

  test('endpoints whose pod is unknown, not a Pod, without a service account, or with a bad inbound-port annotation are left out and counted', () => {
    const { view, skipped } = endpointSliceView(
      [
        slice('s', 'n', 'svc', [
          ep('10.0.0.1', 'known'),
          ep('10.0.0.2', 'gone'),
          { addresses: ['10.0.0.3'], conditions: { ready: true } },
          { addresses: ['10.0.0.4'], targetRef: { kind: 'Node', name: 'known' } },
          ep('10.0.0.5', 'no-sa'),
          ep('10.0.0.6', 'bad-sa'),
          ep('10.0.0.7', 'bad-port'),
          ep('10.0.0.8', 'zero-port'),
        ]),
      ],
      pods(pod('n', 'known', 'sa'), pod('n', 'no-sa', ''), pod('n', 'bad-sa', 'a/b'), pod('n', 'bad-port', 'sa', 'http'), pod('n', 'zero-port', 'sa', '0')),
      OPTS,
    );
    expect(view.get('svc.n')!.map((e) => e.host)).toEqual(['10.0.0.1']);
    expect(skipped).toEqual({ unknownPod: 3, noServiceAccount: 2, badInboundPort: 2, portNotMeshed: 0, notMeshed: 0 });
  });

  test('the pod annotation tessera.dev/inbound-port overrides the configured inbound port', () => {
    const p = podFacts({ metadata: { namespace: 'n', name: 'p', annotations: { 'tessera.dev/inbound-port': '16000' } }, spec: { serviceAccountName: 'sa' } });
    expect(p).toEqual({ namespace: 'n', name: 'p', serviceAccountName: 'sa', inboundPort: '16000', meshed: true });
    const { view } = endpointSliceView([slice('s', 'n', 'svc', [ep('10.0.0.1', 'p'), ep('10.0.0.2', 'q')])], pods(p, pod('n', 'q', 'sa')), { trustDomain: TD, inboundPort: 15999 });
    expect(view.get('svc.n')!.map((e) => `${e.host}:${e.port}`)).toEqual(['10.0.0.1:16000', '10.0.0.2:15999']);
  });

  // Audit 53c F3: every Service of a pod went to its first listener (15006), whatever port the Service targets.
  describe('tessera.dev/inbound-ports: the Service target port picks the listener the injector gave that port', () => {
    const injected = (name: string, ports: string, extra: Record<string, string> = {}) =>
      podFacts({ metadata: { namespace: 'shop', name, annotations: { 'tessera.dev/injected': '0.1.0', 'tessera.dev/inbound-ports': ports, ...extra } }, spec: { serviceAccountName: 'api' } });
    const on = (svc: string, ports: NonNullable<EndpointSliceObject['ports']>, ...names: string[]) =>
      slice(`${svc}-x`, 'shop', svc, names.map((n, i) => ep(`10.1.0.${i + 1}`, n)), { ports });
    const at = (view: ReadonlyMap<string, readonly { host: string; port: number; protocol: string }[]>, svc: string) => view.get(svc)!.map((e) => `${e.host}:${e.port} ${e.protocol}`);

    test('podFacts keeps the app ports in order (the injector parser: blanks, protocols); a bad list is null', () => {
      expect(injected('p', ' 8080 , 9090/grpc,7000').inboundPorts).toEqual([8080, 9090, 7000]);
      for (const bad of ['', '8080,', 'x', '8080,8080', '15006', '70000', '8080/quic']) expect(injected('p', bad).inboundPorts, bad).toBeNull();
      // The other annotations the injector reads do not change the listener numbering.
      expect(injected('p', '8080,9090', { 'tessera.dev/inbound-protocol': 'nope', 'tessera.dev/inbound-mtls': 'odd' }).inboundPorts).toEqual([8080, 9090]);
      expect(podFacts({ metadata: { namespace: 'n', name: 'q', annotations: {} }, spec: {} }).inboundPorts).toBeUndefined();
    });

    test('two Services over one Deployment: 8080 → 15006, 9090 → 15007; the protocol is that port\'s', () => {
      const a = injected('a', '8080,9090');
      const b = injected('b', '8080,9090/grpc');
      const { view, skipped, unmeshedPorts } = endpointSliceView(
        [on('api', [{ name: 'http', port: 8080, protocol: 'TCP' }], 'a', 'b'), on('api-admin', [{ name: 'http-admin', port: 9090, protocol: 'TCP' }], 'a'), on('b-grpc', [{ name: 'x', port: 9090, appProtocol: 'grpc' }], 'b')],
        pods(a, b),
        OPTS,
      );
      expect(at(view, 'api.shop')).toEqual(['10.1.0.1:15006 http', '10.1.0.2:15006 http']);
      expect(at(view, 'api-admin.shop')).toEqual(['10.1.0.1:15007 http']);
      expect(at(view, 'b-grpc.shop')).toEqual(['10.1.0.1:15007 grpc']);
      expect(skipped.portNotMeshed).toBe(0);
      expect(unmeshedPorts).toEqual([]);
    });

    test('a multi-port Service: the first of its TCP ports the pod meshes, with that port\'s protocol', () => {
      const p = injected('p', '8080,9090,9091');
      const ports = [{ name: 'dns', port: 9091, protocol: 'UDP' }, { name: 'metrics', port: 9100 }, { name: 'grpc-api', port: 9090 }, { name: 'http', port: 8080 }];
      const { view } = endpointSliceView([on('multi', ports, 'p')], pods(p), OPTS);
      expect(at(view, 'multi.shop')).toEqual(['10.1.0.1:15007 grpc']);
    });

    test('a Service port the pod does not mesh: the endpoint is left out, counted and named once per Service port', () => {
      const a = injected('a', '8080,9090');
      const b = injected('b', '8080');
      const { view, skipped, unmeshedPorts } = endpointSliceView(
        [on('metrics', [{ name: 'http-m', port: 9100 }], 'a', 'b'), on('api-admin', [{ name: 'http', port: 9090 }], 'a', 'b')],
        pods(a, b),
        OPTS,
      );
      expect(at(view, 'metrics.shop')).toEqual([]);
      expect(at(view, 'api-admin.shop')).toEqual(['10.1.0.1:15007 http']);
      expect(skipped).toEqual({ unknownPod: 0, noServiceAccount: 0, badInboundPort: 0, portNotMeshed: 3, notMeshed: 0 });
      expect(unmeshedPorts).toEqual(['api-admin.shop:9090', 'metrics.shop:9100']);
    });

    test('a bad list is a bad inbound port; tessera.dev/inbound-port still wins; a slice without port numbers gets the first listener', () => {
      const bad = injected('bad', '8080,,9090');
      const own = injected('own', '8080,9090', { 'tessera.dev/inbound-port': '16000' });
      const noNumbers = injected('nn', '8080,9090');
      const { view, skipped } = endpointSliceView([on('s', [{ name: 'http', port: 9090 }], 'bad', 'own'), on('h', [], 'nn')], pods(bad, own, noNumbers), OPTS);
      expect(at(view, 's.shop')).toEqual(['10.1.0.2:16000 http']);
      expect(at(view, 'h.shop')).toEqual(['10.1.0.1:15006 http']);
      expect(skipped.badInboundPort).toBe(1);
    });
  });

  test('slices without the service-name label, FQDN slices, and endpoints without an address are ignored', () => {
    const { view, skipped } = endpointSliceView(
      [slice('x', 'n', undefined, [ep('10.0.0.1', 'p')]), slice('f', 'n', 'ext', [{ addresses: ['db.example.com'] }], { addressType: 'FQDN' }), slice('e', 'n', 'svc', [{ addresses: [], targetRef: { kind: 'Pod', name: 'p' } }])],
      pods(pod('n', 'p', 'sa')),
      OPTS,
    );
    expect([...view]).toEqual([['svc.n', []]]);
    expect(skipped).toEqual({ unknownPod: 0, noServiceAccount: 0, badInboundPort: 0, portNotMeshed: 0, notMeshed: 0 });
  });

  test('IPv6 endpoints; an address in two slices of a service (rebalancing) appears once, ready if either says so', () => {
    const v6 = { addressType: 'IPv6' };
    const { view } = endpointSliceView(
      [slice('a', 'n', 'svc', [ep('fd00::1', 'p', { ready: false })], v6), slice('b', 'n', 'svc', [ep('fd00::1', 'p', { ready: true })], v6), slice('c', 'n', 'svc', [ep('fd00::2', 'q', { ready: false })], v6)],
      pods(pod('n', 'p', 'sa'), pod('n', 'q', 'sa')),
      OPTS,
    );
    expect(view.get('svc.n')!.map((e) => `${e.host} ${e.ready}`)).toEqual(['fd00::1 true', 'fd00::2 false']);
  });

  test('a zone longer than a label value is dropped rather than passed on', () => {
    const { view } = endpointSliceView([slice('s', 'n', 'svc', [ep('10.0.0.1', 'p', { ready: true }, 'z'.repeat(64))])], pods(pod('n', 'p', 'sa')), OPTS);
    expect(view.get('svc.n')![0]!.zone).toBe('');
  });
});

describe('portProtocol', () => {
  test.each([
    [[{ name: 'web', appProtocol: 'http' }], 'http'],
    [[{ name: 'web', appProtocol: 'kubernetes.io/h2c' }], 'http2'],
    [[{ name: 'web', appProtocol: 'grpc' }], 'grpc'],
    [[{ name: 'web', appProtocol: 'tcp' }], 'tcp'],
    [[{ name: 'http-web', appProtocol: 'mysql' }], 'tcp'], // an unknown appProtocol is opaque, and wins over the name
    [[{ name: 'grpc-api' }], 'grpc'],
    [[{ name: 'http2-api' }], 'http2'],
    [[{ name: 'tcp-db' }], 'tcp'],
    [[{ name: 'http' }], 'http'],
    [[{ name: 'https-web' }], 'tcp'], // TLS of the app's own: opaque to the mesh
    [[{ name: 'metrics' }], 'http'],
    [[{}], 'http'],
    [[], 'http'],
    [null, 'http'],
    [[{ name: 'grpc-dns', protocol: 'UDP' }, { name: 'tcp-x', protocol: 'TCP' }], 'tcp'], // the first TCP port decides
  ])('%j → %s', (ports, protocol) => {
    expect(portProtocol(ports as EndpointSliceObject['ports'])).toBe(protocol);
  });
});
