// Who may self-register a service: a listed service only by the IDs its patterns match; any other by the workload
// its name points at as kube-dns reads it (<sa>[.<ns>[.svc[.cluster.local]]] → spiffe://<td>/ns/<ns|default>/sa/<sa>).
import { describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { parseControlPlaneConfig } from '../../../../control-plane/src/config/cp-config.js';
import { conventionalId, serviceIdentityRule } from '../../../../control-plane/src/discovery/service-identities.js';

const TD = TrustDomain.parse('example.org');
const id = (ns: string, sa: string) => `spiffe://example.org/ns/${ns}/sa/${sa}`;

describe('service identities', () => {
  test.each([
    ['api', id('default', 'api')],
    ['api.payments', id('payments', 'api')],
    ['api.payments.svc', id('payments', 'api')],
    ['api.payments.svc.cluster.local', id('payments', 'api')],
    ['api.payments.example.com', null],
    ['a.b.c', null],
    // As kube-dns reads it (common/routing/kubernetes-service-name.ts, the forward proxy's reading too).
    ['api.svc', id('svc', 'api')],
    ['api.svc.cluster.local', null],
    ['API.Payments.SVC', id('payments', 'api')],
    ['api.payments.svc.cluster.local.', id('payments', 'api')],
    // `<sa>.<ns>.svc.<anything>` is no Kubernetes name: nobody's until listed (it let one ID register 1,024 names).
    ['api.payments.svc.f17', null],
    ['api.payments.svc.corp.example', null],
  ])('%s is served by default by %s', (service, expected) => {
    expect(conventionalId(TD, service)).toBe(expected);
  });

  test('an unlisted service: only the workload its name points at', () => {
    const may = serviceIdentityRule(TD);
    expect(may('api.payments', id('payments', 'api'))).toBe(true);
    expect(may('api.payments', id('default', 'api'))).toBe(false);
    expect(may('api.payments', id('payments', 'evil'))).toBe(false);
    expect(may('api', id('default', 'api'))).toBe(true);
    // The same path in another trust domain is another workload.
    expect(may('api', 'spiffe://other.org/ns/default/sa/api')).toBe(false);
    // A name with no such reading is nobody's until listed.
    expect(may('api.payments.example.com', id('payments', 'api'))).toBe(false);
  });

  test('a listed service: only the IDs its patterns match, the naming rule no longer applies', () => {
    const may = serviceIdentityRule(TD, { 'api-h2': [id('default', 'api')], 'api.payments': ['spiffe://example.org/ns/payments/sa/*'], reports: ['spiffe://example.org/ns/batch/**'] });
    expect(may('api-h2', id('default', 'api'))).toBe(true);
    expect(may('api-h2', id('default', 'api-h2'))).toBe(false);
    expect(may('api.payments', id('payments', 'checkout'))).toBe(true);
    expect(may('api.payments', id('default', 'api'))).toBe(false);
    expect(may('reports', 'spiffe://example.org/ns/batch/sa/nightly')).toBe(true);
    expect(may('reports', id('default', 'reports'))).toBe(false);
    // Unlisted services keep the naming rule.
    expect(may('web', id('default', 'web'))).toBe(true);
  });
});

describe('a listed name pins its other spellings', () => {
  test('api.default listed: api, api.default.svc and api.default.svc.cluster.local follow its list, not the naming rule', () => {
    const may = serviceIdentityRule(TD, { 'api.default': ['spiffe://example.org/prod/api'] });
    for (const name of ['api.default', 'api', 'api.default.svc', 'api.default.svc.cluster.local']) {
      expect(may(name, 'spiffe://example.org/prod/api'), name).toBe(true);
      expect(may(name, id('default', 'api')), name).toBe(false);
    }
    // Another namespace's api is another service.
    expect(may('api.payments', id('payments', 'api'))).toBe(true);
  });

  test('a spelling listed itself keeps its own list', () => {
    const may = serviceIdentityRule(TD, { 'api.default': ['spiffe://example.org/prod/api'], 'api.default.svc.cluster.local': [id('default', 'api')] });
    expect(may('api.default.svc.cluster.local', id('default', 'api'))).toBe(true);
    expect(may('api.default', id('default', 'api'))).toBe(false);
    // Not listed themselves: the patterns of every listed spelling of the name.
    for (const name of ['api', 'api.default.svc']) {
      expect(may(name, id('default', 'api')), name).toBe(true);
      expect(may(name, 'spiffe://example.org/prod/api'), name).toBe(true);
      expect(may(name, id('default', 'evil')), name).toBe(false);
    }
  });
});

describe('discovery.serviceIdentities in the control-plane config', () => {
  const parse = (block: string) => parseControlPlaneConfig(`trustDomain: example.org\ndataDir: ./data\nlisten: 127.0.0.1:0\nadminListen: 127.0.0.1:0\ndiscovery:\n  serviceIdentities:\n${block}`, '/etc/tessera/cp.yaml', {});
  const refusal = (block: string) => {
    try {
      parse(block);
    } catch (e) {
      return isTesseraError(e) ? `${e.code} ${e.message}` : String(e);
    }
    return 'accepted';
  };

  test('read as given; absent: none listed', () => {
    expect(parse(`    api-h2: [${id('default', 'api')}, "spiffe://example.org/ns/default/sa/*"]\n`).discovery.serviceIdentities).toEqual({ 'api-h2': [id('default', 'api'), 'spiffe://example.org/ns/default/sa/*'] });
    expect(parseControlPlaneConfig('trustDomain: example.org\ndataDir: ./data\nlisten: 127.0.0.1:0\nadminListen: 127.0.0.1:0\n', '/etc/tessera/cp.yaml', {}).discovery.serviceIdentities).toEqual({});
  });

  test('a bad service name, a bad pattern or an empty list: refused with the key and its line', () => {
    expect(refusal(`    Api_H2: [${id('default', 'api')}]\n`)).toMatch(/TESSERA_ERR_CONFIG_INVALID .*cp\.yaml:7.*discovery\.serviceIdentities\.Api_H2.*not a service name/);
    expect(refusal('    api: [https://example.org/x]\n')).toMatch(/TESSERA_ERR_CONFIG_INVALID .*cp\.yaml:7.*discovery\.serviceIdentities\.api\[0\]/);
    expect(refusal('    api: []\n')).toMatch(/TESSERA_ERR_CONFIG_INVALID .*discovery\.serviceIdentities\.api/);
  });
});
