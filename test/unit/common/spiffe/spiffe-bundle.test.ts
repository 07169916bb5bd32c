// The SPIFFE bundle document: built and parsed back; each malformed-JWKS variant refused with its code; keys of
// other uses ignored; what jose reads from it is the same key.
import { generateKeyPairSync } from 'node:crypto';
import { importJWK, exportSPKI } from 'jose';
import { describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { parseSpiffeBundle, spiffeBundleDocument } from '../../../../common/spiffe/spiffe-bundle.js';
import { TestCa } from '../../../helpers/test-ca.js';

const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = (k = ec.publicKey) => k.export({ format: 'jwk' }) as Record<string, unknown>;

function code(doc: unknown): string {
  try {
    parseSpiffeBundle(typeof doc === 'string' ? doc : JSON.stringify(doc));
    return 'ok';
  } catch (e) {
    if (!isTesseraError(e)) throw e;
    return e.code;
  }
}

describe('spiffeBundleDocument / parseSpiffeBundle', () => {
  test('round trip: x509-svid keys with x5c, jwt-svid keys with kid, sequence and refresh hint', async () => {
    const ca = await TestCa.create();
    const doc = spiffeBundleDocument({ x509Authorities: [ca.root.cert], jwtAuthorities: [{ keyId: 'k1', publicKey: ec.publicKey }, { keyId: 'r1', publicKey: rsa.publicKey }], sequence: 7, refreshHintSeconds: 300 });
    const parsed = parseSpiffeBundle(JSON.stringify(doc));
    expect(parsed.x509Authorities.map((c) => c.fingerprint256)).toEqual([ca.root.cert.fingerprint256]);
    expect([...parsed.jwtAuthorities.keys()]).toEqual(['k1', 'r1']);
    expect(parsed.jwtAuthorities.get('k1')!.equals(ec.publicKey)).toBe(true);
    expect(parsed).toMatchObject({ sequence: 7, refreshHintSeconds: 300 });
    // jose reads the same key out of the published entry.
    const { use: _u, ...k1 } = (doc['keys'] as Record<string, unknown>[]).find((k) => k['kid'] === 'k1')!;
    expect((await exportSPKI((await importJWK(k1, 'ES256')) as Parameters<typeof exportSPKI>[0])).trim()).toBe((ec.publicKey.export({ type: 'spki', format: 'pem' }) as string).trim());
  });

  test('keys of another use (or none) are ignored', () => {
    const parsed = parseSpiffeBundle(JSON.stringify({ keys: [{ ...jwk(), kid: 'sig', use: 'sig' }, { ...jwk(), kid: 'none' }] }));
    expect(parsed.jwtAuthorities.size).toBe(0);
  });

  test.each([
    ['not JSON', '{'],
    ['an array', '[]'],
    ['no keys', {}],
    ['keys not an array', { keys: {} }],
    ['a key not an object', { keys: [1] }],
    ['jwt-svid without kid', { keys: [{ ...jwt(), kid: undefined }] }],
    ['jwt-svid with empty kid', { keys: [{ ...jwt(), kid: '' }] }],
    ['duplicate kid', { keys: [jwt(), jwt()] }],
    ['symmetric key', { keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 'h', use: 'jwt-svid' }] }],
    ['private key', { keys: [{ ...(ec.privateKey.export({ format: 'jwk' }) as object), kid: 'p', use: 'jwt-svid' }] }],
    ['broken EC point', { keys: [{ ...jwt(), x: 'AAAA' }] }],
    ['x509-svid without x5c', { keys: [{ ...jwk(), use: 'x509-svid' }] }],
    ['x509-svid with two x5c', { keys: [{ ...jwk(), use: 'x509-svid', x5c: ['AA', 'BB'] }] }],
    ['x509-svid with garbage x5c', { keys: [{ ...jwk(), use: 'x509-svid', x5c: ['AAAA'] }] }],
    ['negative sequence', { keys: [], spiffe_sequence: -1 }],
    ['string refresh hint', { keys: [], spiffe_refresh_hint: '300' }],
    ['too many keys', { keys: Array.from({ length: 300 }, (_, i) => ({ ...jwk(), kid: `k${i}`, use: 'sig' })) }],
  ])('malformed: %s', (_n, doc) => expect(code(doc)).toBe('TESSERA_ERR_SPIFFE_BUNDLE_MALFORMED'));

  test('an x509-svid entry whose key parameters are not its certificate\'s key is refused', async () => {
    const ca = await TestCa.create();
    expect(code({ keys: [{ ...jwk(), use: 'x509-svid', x5c: [ca.root.cert.raw.toString('base64')] }] })).toBe('TESSERA_ERR_SPIFFE_BUNDLE_MALFORMED');
  });
});

function jwt(): Record<string, unknown> {
  return { ...jwk(), kid: 'k1', use: 'jwt-svid' };
}
