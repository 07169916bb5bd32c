// Upstream handshakes refused by Tessera's own checks (secure naming, the deny-list) fail with a TesseraError and
// are classified by its code: every SVID and ban code must land on the reason the verifier gave, never "other".
import { describe, expect, test } from 'vitest';
import { ERROR_CATALOGUE, type ErrorCode, TesseraError } from '../../../../common/errors.js';
import { SpiffeId } from '../../../../common/spiffe/spiffe-id.js';
import { TrustBundle, TrustBundleSet } from '../../../../common/spiffe/trust-bundle.js';
import { verifyX509Svid } from '../../../../common/spiffe/x509-svid.js';
import type { IdentitySnapshot } from '../../../../proxy/src/identity/identity-snapshot.js';
import { classifyTlsError } from '../../../../proxy/src/telemetry/handshake-reason.js';
import { PeerVerifier } from '../../../../proxy/src/tls/peer-verify.js';
import { TestCa } from '../../../helpers/test-ca.js';

const WEB = 'spiffe://example.org/ns/default/sa/web';

function bundles(ca: TestCa): TrustBundleSet {
  return new TrustBundleSet([TrustBundle.parse('example.org', ca.bundlePem())]);
}

describe('handshake failures classified by code', () => {
  const codes = (Object.keys(ERROR_CATALOGUE) as ErrorCode[]).filter((c) => c.startsWith('TESSERA_ERR_SVID_') || /^TESSERA_ERR_REVOCATION_[A-Z]+_BANNED$/.test(c));

  test.each(codes)('%s has a handshake reason', (code) => {
    expect(classifyTlsError(new TesseraError(code, 'upstream 127.0.0.1:1 is not spiffe://x/y'))).not.toBe('other');
  });

  test('ban codes are "revoked"', () => {
    expect(classifyTlsError(new TesseraError('TESSERA_ERR_REVOCATION_ID_BANNED'))).toBe('revoked');
    expect(classifyTlsError(new TesseraError('TESSERA_ERR_REVOCATION_SERIAL_BANNED'))).toBe('revoked');
  });

  test('a refused peer carries the code whose classification is the reason it was refused for', async () => {
    const ca = await TestCa.create({ trustDomain: 'example.org' });
    const other = await TestCa.create({ trustDomain: 'example.org' });
    const web = await ca.mintSvid(WEB);
    const now = Date.now();
    const cases = [
      verifyX509Svid(web.chain, bundles(ca), { nowMs: now, expectedId: SpiffeId.parse('spiffe://example.org/ns/default/sa/api') }),
      verifyX509Svid(web.chain, bundles(other), { nowMs: now }),
      verifyX509Svid(web.chain, bundles(ca), { nowMs: now + 48 * 3_600_000 }),
      verifyX509Svid([Buffer.from('not DER')], bundles(ca), { nowMs: now }),
      new PeerVerifier().verify(undefined, { generation: 1, bundles: bundles(ca) } as unknown as IdentitySnapshot, now),
    ];
    expect(cases.map((r) => !r.ok && r.reason)).toEqual(['id_mismatch', 'unknown_ca', 'expired', 'bad_svid', 'no_client_cert']);
    for (const r of cases) {
      if (r.ok) throw new Error('verified');
      expect(r.code).toMatch(/^TESSERA_ERR_SVID_/);
      expect(classifyTlsError(new TesseraError(r.code, r.message))).toBe(r.reason);
    }
  });
});
