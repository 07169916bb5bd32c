// The control plane's renewal attestor verifies the caller's current SVID with the same path rules as every
// listener: a chain that breaks pathLen, an extendedKeyUsage without both TLS purposes, a SHA-1 signature or an
// RSA-1024 key is no evidence, and the audit names the SVID rule (svidCode).
import { describe, expect, test } from 'vitest';
import type { ErrorCode } from '../../../../common/errors.js';
import { TrustBundle } from '../../../../common/spiffe/trust-bundle.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { SvidAttestor } from '../../../../control-plane/src/attestation/svid-attestor.js';
import { EKU, type ForgeTemplate, type Forged, forgeCertificate, forgeKey } from '../../../helpers/cert-forge.js';

const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const at = { notBefore: new Date(NOW - 3_600_000), notAfter: new Date(NOW + 3_600_000) };
const ID = 'spiffe://example.org/ns/default/sa/web';

describe('SvidAttestor', () => {
  const root = forgeCertificate({ cn: 'Root', key: forgeKey('ec-p256'), ca: true, ...at });
  const inter = forgeCertificate({ cn: 'Intermediate', key: forgeKey('ec-p256'), issuer: root, ca: true, pathLen: 0, ...at });
  const attestor = new SvidAttestor(() => new TrustBundle(TrustDomain.parse('example.org'), [root.cert]), { nowMs: () => NOW });
  const leaf = (issuer: Forged, o: Partial<ForgeTemplate> = {}) => forgeCertificate({ cn: 'web', key: forgeKey('ec-p256'), issuer, uriSans: [ID], extKeyUsage: [EKU.serverAuth, EKU.clientAuth], ...at, ...o });
  const attest = (...chain: Forged[]) => attestor.attest(chain.map((c) => c.cert.raw));

  test('a chain that breaks no rule gives the caller its identity', () => {
    expect(attest(leaf(inter), inter).spiffeId.toString()).toBe(ID);
  });

  const sub = forgeCertificate({ cn: 'Sub', key: forgeKey('ec-p256'), issuer: inter, ca: true, ...at });
  test.each([
    ['a CA below a pathLen 0 intermediate', 'TESSERA_ERR_SVID_PATH_LENGTH', () => [leaf(sub), sub, inter]],
    ['a serverAuth-only leaf', 'TESSERA_ERR_SVID_BAD_EKU', () => [leaf(inter, { extKeyUsage: [EKU.serverAuth] }), inter]],
    ['a SHA-1-signed leaf', 'TESSERA_ERR_SVID_WEAK_SIGNATURE', () => [leaf(inter, { signature: 'ecdsa-sha1' }), inter]],
    ['an RSA-1024 leaf', 'TESSERA_ERR_SVID_WEAK_KEY', () => [leaf(inter, { key: forgeKey('rsa-1024') }), inter]],
  ] as [string, ErrorCode, () => Forged[]][])('%s is refused (%s)', (_name, svidCode, chain) => {
    expect(() => attest(...chain())).toThrowError(expect.objectContaining({ code: 'TESSERA_ERR_ATTESTATION_SVID_INVALID', details: expect.objectContaining({ reason: 'bad_svid', svidCode }) }));
  });
});
