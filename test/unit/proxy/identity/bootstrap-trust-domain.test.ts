// The control-plane identity's trust domain against its bootstrap bundle: a configured trust domain that the bundle's
// CA certificates do not name is refused at start, naming the key and what the bundle names (audit 52a F6: it was
// retried for ever as UNAVAILABLE, "chains to "example.com", ID is in "example.org""); unset, the bundle names it.
import { beforeAll, describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
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
});
