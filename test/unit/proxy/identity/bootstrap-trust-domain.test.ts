// The control-plane identity's trust domain against its bootstrap bundle: a configured trust domain that the bundle's
// CA certificates do not name is refused at start, naming the key and what the bundle names (audit 52a F6: it was
// retried for ever as UNAVAILABLE, "chains to "example.com", ID is in "example.org""); unset, the bundle names it.
// Refused at the key's file and line, which the config parser keeps for this later check.
import { beforeAll, describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { parseProxyConfig } from '../../../../proxy/src/config/proxy-config.js';
import { bootstrapTrustDomain } from '../../../../proxy/src/identity/bootstrap-trust-domain.js';
import { TestCa } from '../../../helpers/test-ca.js';

let org: TestCa;
let partner: TestCa;

beforeAll(async () => {
  [org, partner] = await Promise.all([TestCa.create({ trustDomain: 'example.org' }), TestCa.create({ trustDomain: 'partner.test' })]);
});

describe('bootstrapTrustDomain', () => {
  test('unset: the trust domain the bundle names', () => {
    expect(bootstrapTrustDomain(org.bundlePem(), 'bundle.pem', undefined).toString()).toBe('example.org');
  });

  test('set to the one the bundle names (or one of several): taken', () => {
    expect(bootstrapTrustDomain(org.bundlePem(), 'bundle.pem', 'example.org').toString()).toBe('example.org');
    expect(bootstrapTrustDomain(org.bundlePem() + partner.bundlePem(), 'bundle.pem', 'partner.test').toString()).toBe('partner.test');
  });

  test.each([
    ['another domain', 'example.com'],
    ['a subdomain', 'sub.example.org'],
    ['a parent', 'org'],
  ])('set to %s than the bundle names: CONFIG_INVALID naming the key, the file and what it names', (_what, configured) => {
    let err: unknown;
    try {
      bootstrapTrustDomain(org.bundlePem() + partner.bundlePem(), '/etc/tessera/bundle.pem', configured);
    } catch (e) {
      err = e;
    }
    expect(isTesseraError(err, 'TESSERA_ERR_CONFIG_INVALID'), String(err)).toBe(true);
    const message = (err as Error).message;
    expect(message).toContain('identity.controlPlane.trustDomain');
    expect(message).toContain(`"${configured}"`);
    expect(message).toContain('/etc/tessera/bundle.pem');
    expect(message).toContain('"example.org"');
    expect(message).toContain('"partner.test"');
  });

  // Audit 61d F3: the key was named, not the file and line every other CONFIG_INVALID carries.
  test('the configured trust domain is named at its place in the config file, kept by the parser', () => {
    const cfg = parseProxyConfig('identity:\n  controlPlane:\n    address: 127.0.0.1:8443\n    bundleFile: bundle.pem\n    joinToken: t\n    trustDomain: example.com\noutbound:\n  - { name: api, listen: 127.0.0.1:0, upstream: 127.0.0.1:1, spiffeId: spiffe://example.com/api }\n', '/etc/tessera/proxy.yaml');
    const id = cfg.identity;
    if (id.kind !== 'controlPlane') throw new Error('not a control-plane identity');
    expect(id.trustDomainAt).toEqual({ file: '/etc/tessera/proxy.yaml', line: 6 });
    let err: unknown;
    try {
      bootstrapTrustDomain(org.bundlePem(), id.bundleFile, id.trustDomain, id.trustDomainAt);
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).toMatch(/^\/etc\/tessera\/proxy\.yaml:6: identity\.controlPlane\.trustDomain: "example\.com", but the certificates of identity\.controlPlane\.bundleFile \(\/etc\/tessera\/bundle\.pem\) are of "example\.org"/);
    expect((err as { details: unknown }).details).toEqual({ file: '/etc/tessera/proxy.yaml', line: 6, key: 'identity.controlPlane.trustDomain' });
  });
});
