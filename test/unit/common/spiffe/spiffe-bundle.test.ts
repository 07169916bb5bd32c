// The SPIFFE bundle document: built and parsed back; each malformed-JWKS variant refused with its code; what the
// spec has consumers skip skipped and said (other uses, key types other than EC and RSA, x509-svid entries without
// x5c; all but the first x5c value), never the whole document refused for it; spiffe_sequence exact past 2^53;
// what jose reads from it is the same key.
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
    expect(parsed).toMatchObject({ sequence: 7n, refreshHintSeconds: 300, ignored: [] });
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
    ['private key', { keys: [{ ...(ec.privateKey.export({ format: 'jwk' }) as object), kid: 'p', use: 'jwt-svid' }] }],
    ['broken EC point', { keys: [{ ...jwt(), x: 'AAAA' }] }],
    ['x509-svid with x5c not an array', { keys: [{ ...jwk(), use: 'x509-svid', x5c: 'AA' }] }],
    ['x509-svid with a garbage first x5c of two', { keys: [{ ...jwk(), use: 'x509-svid', x5c: ['AA', 'BB'] }] }],
    ['x509-svid with garbage x5c', { keys: [{ ...jwk(), use: 'x509-svid', x5c: ['AAAA'] }] }],
    ['negative sequence', { keys: [], spiffe_sequence: -1 }],
    ['fractional sequence', '{"keys": [], "spiffe_sequence": 1.5}'],
    ['string sequence', { keys: [], spiffe_sequence: '7' }],
    ['string refresh hint', { keys: [], spiffe_refresh_hint: '300' }],
    ['too many keys', { keys: Array.from({ length: 300 }, (_, i) => ({ ...jwk(), kid: `k${i}`, use: 'sig' })) }],
  ])('malformed: %s', (_n, doc) => expect(code(doc)).toBe('TESSERA_ERR_SPIFFE_BUNDLE_MALFORMED'));

  test('entries the spec has consumers skip are skipped and said; the rest of the document is taken', async () => {
    const ca = await TestCa.create();
    const other = await TestCa.create();
    const ed = generateKeyPairSync('ed25519');
    const root = (c: TestCa) => ({ ...jwk(c.root.cert.publicKey), use: 'x509-svid', x5c: [c.root.cert.raw.toString('base64')] });
    const doc = {
      keys: [
        root(ca),
        { ...(ed.publicKey.export({ format: 'jwk' }) as object), use: 'x509-svid', x5c: [ca.root.cert.raw.toString('base64')] }, // OKP
        { ...(ed.publicKey.export({ format: 'jwk' }) as object), kid: 'ed', use: 'jwt-svid' },
        { kty: 'oct', k: 'c2VjcmV0', kid: 'h', use: 'jwt-svid' },
        { kty: 'QUANTUM', kid: 'q', use: 'jwt-svid' },
        { ...jwk(), use: 'x509-svid' }, // no x5c
        { ...jwk(), use: 'x509-svid', x5c: [] },
        // A chain: only its first certificate is the authority (X509-SVID section 6.2).
        { ...root(other), x5c: [other.root.cert.raw.toString('base64'), ca.root.cert.raw.toString('base64')] },
        jwt(),
      ],
      spiffe_sequence: 3,
    };
    const parsed = parseSpiffeBundle(JSON.stringify(doc));
    expect(parsed.x509Authorities.map((c) => c.fingerprint256)).toEqual([ca.root.cert.fingerprint256, other.root.cert.fingerprint256]);
    expect([...parsed.jwtAuthorities.keys()]).toEqual(['k1']);
    expect(parsed.ignored).toEqual([
      'keys[1]: kty "OKP" is not EC or RSA',
      'keys[2]: kty "OKP" is not EC or RSA',
      'keys[3]: kty "oct" is not EC or RSA',
      'keys[4]: kty "QUANTUM" is not EC or RSA',
      'keys[5]: an x509-svid entry without x5c',
      'keys[6]: an x509-svid entry without x5c',
    ]);
  });

  test('spiffe_sequence is exact to 64 bits and past them (JSON numbers past 2^53 lose digits)', () => {
    for (const n of ['0', '9007199254740993', '9223372036854775807', '18446744073709551615']) {
      expect(parseSpiffeBundle(`{"keys": [], "spiffe_sequence": ${n}}`).sequence).toBe(BigInt(n));
    }
    // Only the document's own member counts, not one of the same name inside a key.
    expect(parseSpiffeBundle('{"keys": [{"use": "sig", "spiffe_sequence": 5}], "spiffe_sequence": 9223372036854775807}').sequence).toBe(9223372036854775807n);
    expect(parseSpiffeBundle('{"keys": [{"use": "sig", "spiffe_sequence": 5}]}').sequence).toBeUndefined();
  });

  test('an x509-svid entry whose key parameters are not its certificate\'s key is refused', async () => {
    const ca = await TestCa.create();
    expect(code({ keys: [{ ...jwk(), use: 'x509-svid', x5c: [ca.root.cert.raw.toString('base64')] }] })).toBe('TESSERA_ERR_SPIFFE_BUNDLE_MALFORMED');
  });
});

function jwt(): Record<string, unknown> {
  return { ...jwk(), kid: 'k1', use: 'jwt-svid' };
}
