// verifyAkChain: an AK certificate chain is held to the rules peer chains meet — pathLenConstraint, SHA-2
// signatures, strong keys, nothing unrelated sent — with no TLS purpose asked of it, and every certificate valid now;
// whether the path certifies an attestation key (tcg-kp-AIKCertificate) is reported for a PCR policy to require.
import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, test, vi } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { TCG_KP_AIK_CERTIFICATE, verifyAkChain } from '../../../../control-plane/src/attestation/tpm-ak-chain.js';
import { type ForgeTemplate, type Forged, forgeCertificate, forgeKey } from '../../../helpers/cert-forge.js';

const at = { notBefore: new Date(Date.now() - 3_600_000), notAfter: new Date(Date.now() + 3_600_000) };
let root: Forged;
let issuing: Forged;

beforeAll(() => {
  root = forgeCertificate({ cn: 'TPM Root', key: forgeKey('ec-p256'), ca: true, ...at });
  issuing = forgeCertificate({ cn: 'TPM Issuing', key: forgeKey('ec-p256'), issuer: root, ca: true, pathLen: 0, ...at });
});

const ak = (issuer: Forged, o: Partial<ForgeTemplate> = {}) => forgeCertificate({ cn: 'node-1', key: forgeKey('ec-p256'), issuer, ...at, ...o });

/** The refusal's code and reason, or 'ok'. */
function verdict(chain: readonly Forged[]): string {
  try {
    verifyAkChain(chain.map((c) => c.cert.raw), [root.cert], Date.now());
    return 'ok';
  } catch (e) {
    if (!isTesseraError(e)) throw e;
    return `${e.code}: ${String(e.details?.['reason'])}`;
  }
}

describe('verifyAkChain', () => {
  test('a sound chain is accepted, an AK with an AIK-only extendedKeyUsage included', () => {
    expect(verdict([ak(issuing), issuing])).toBe('ok');
    expect(verdict([ak(issuing, { extKeyUsage: ['2.23.133.8.3'] }), issuing])).toBe('ok');
  });

  test('a pathLen the chain breaks, a SHA-1 signature, weak keys and an unrelated certificate are refused', () => {
    const sub = forgeCertificate({ cn: 'TPM Sub', key: forgeKey('ec-p256'), issuer: issuing, ca: true, ...at });
    expect(verdict([ak(sub), sub, issuing])).toMatch(/^TESSERA_ERR_ATTESTATION_TPM_AK_UNTRUSTED: .*allows 0 intermediate/);
    expect(verdict([ak(issuing, { signature: 'ecdsa-sha1' }), issuing])).toMatch(/^TESSERA_ERR_ATTESTATION_TPM_AK_UNTRUSTED: the AK certificate has a signature with/);
    expect(verdict([ak(issuing, { key: forgeKey('rsa-1024') }), issuing])).toMatch(/^TESSERA_ERR_ATTESTATION_TPM_AK_UNTRUSTED: the AK certificate has an RSA key of 1024 bits/);
    const weakIssuing = forgeCertificate({ cn: 'Weak Issuing', key: forgeKey('rsa-1024'), issuer: root, ca: true, ...at });
    expect(verdict([ak(weakIssuing), weakIssuing])).toMatch(/^TESSERA_ERR_ATTESTATION_TPM_AK_UNTRUSTED: .*RSA key of 1024 bits/);
    const stranger = forgeCertificate({ cn: 'Stranger', key: forgeKey('ec-p256'), ...at });
    expect(verdict([ak(issuing), issuing, stranger])).toMatch(/^TESSERA_ERR_ATTESTATION_TPM_AK_UNTRUSTED: .*not on/i);
  });

  // An outside audit: the AK sent twice (or four times) was accepted, where peer chains refuse a repeat.
  test('a certificate sent twice is refused, the AK or an intermediate', () => {
    const leaf = ak(issuing);
    expect(verdict([leaf, leaf])).toBe('TESSERA_ERR_ATTESTATION_TPM_AK_UNTRUSTED: the chain holds certificate #2 twice');
    expect(verdict([leaf, leaf, leaf, leaf])).toMatch(/^TESSERA_ERR_ATTESTATION_TPM_AK_UNTRUSTED: the chain holds certificate #2 twice/);
    expect(verdict([leaf, issuing, issuing])).toBe('TESSERA_ERR_ATTESTATION_TPM_AK_UNTRUSTED: the chain holds certificate #3 twice');
    expect(verdict([leaf])).toBe('TESSERA_ERR_ATTESTATION_TPM_AK_UNTRUSTED: not certified by a CA of attestors.tpm.caFile');
  });

  // The same audit's next round: a copy re-encoded (a non-minimal length, a trailing byte) passed the byte-exact check.
  test('a certificate not in DER (a non-minimal length, trailing bytes) is refused, so a re-encoded copy is no escape', () => {
    const leaf = ak(issuing);
    const der = Buffer.from(issuing.cert.raw);
    expect(der[1]).toBe(0x82); // a two-byte length: re-encoded with three
    const longForm = Buffer.concat([Buffer.from([0x30, 0x83, 0x00, der[2]!, der[3]!]), der.subarray(4)]);
    const trailing = Buffer.concat([der, Buffer.from([0])]);
    const refusal = (chain: Uint8Array[]) => {
      try {
        verifyAkChain(chain, [root.cert], Date.now());
        return 'ok';
      } catch (e) {
        return `${(e as { code?: string }).code}: ${String((e as { details?: Record<string, unknown> }).details?.['reason'])}`;
      }
    };
    expect(refusal([leaf.cert.raw, der, longForm])).toBe('TESSERA_ERR_ATTESTATION_TPM_AK_UNTRUSTED: certificate 2 is not DER-encoded (or has trailing bytes)');
    expect(refusal([leaf.cert.raw, der, trailing])).toBe('TESSERA_ERR_ATTESTATION_TPM_AK_UNTRUSTED: certificate 2 is not DER-encoded (or has trailing bytes)');
    expect(refusal([leaf.cert.raw, longForm])).toBe('TESSERA_ERR_ATTESTATION_TPM_AK_UNTRUSTED: certificate 1 is not DER-encoded (or has trailing bytes)');
    expect(refusal([leaf.cert.raw, der])).toBe('ok');
  });

  // Audit 56a F2: each sent intermediate's key checked the AK certificate's signature before the path was known to reach
  // caFile, ~9 ms for a 3,070-bit RSA exponent, for anyone with a free nonce; no rule looked at the exponent at all.
  test('a key with a 3,070-bit RSA exponent on the chain is refused before any signature is checked, even one the CA signed', () => {
    const huge = forgeKey('rsa-3072-e3070');
    const hugeIssuing = forgeCertificate({ cn: 'Huge Issuing', key: huge, issuer: root, ca: true, ...at });
    const verify = vi.spyOn(X509Certificate.prototype, 'verify');
    try {
      expect(verdict([ak(hugeIssuing), hugeIssuing])).toBe('TESSERA_ERR_ATTESTATION_TPM_AK_UNTRUSTED: the chain holds intermediate CN=Huge Issuing: an RSA key with a public exponent of 3070 bits (at most 2^31-1)');
      // The AK's own key (it checks the quote): judged first of all.
      expect(verdict([ak(issuing, { key: huge }), issuing])).toBe('TESSERA_ERR_ATTESTATION_TPM_AK_UNTRUSTED: the AK certificate has an RSA key with a public exponent of 3070 bits (at most 2^31-1)');
      // The audit's chain: look-alikes of the issuer's name, not the CA's, each with such a key: no path, no check.
      const lookAlikes = [0, 1, 2].map(() => forgeCertificate({ cn: 'TPM Issuing', key: huge, ca: true, ...at }));
      expect(verdict([ak(lookAlikes[0]!), ...lookAlikes])).toBe('TESSERA_ERR_ATTESTATION_TPM_AK_UNTRUSTED: not certified by a CA of attestors.tpm.caFile');
      expect(verify).not.toHaveBeenCalled();
    } finally {
      verify.mockRestore();
    }
  });

  test('an intermediate past its validity is AK_EXPIRED', () => {
    const old = forgeCertificate({ cn: 'Old Issuing', key: forgeKey('ec-p256'), issuer: root, ca: true, notBefore: new Date(Date.now() - 7_200_000), notAfter: new Date(Date.now() - 60_000) });
    expect(verdict([ak(old), old])).toMatch(/^TESSERA_ERR_ATTESTATION_TPM_AK_EXPIRED: the CA certificate/);
  });

  // Audit 56a F1: a DevID key (not restricted) certified by caFile forged quotes a PCR policy accepted. The chain
  // now says whether it certifies an attestation key; tpm-attestor.ts refuses one that does not under a policy.
  test('the attestation-key purpose: the AK certificate must list it, and no CA on the path may list purposes without it', () => {
    const fault = (chain: readonly Forged[]) => verifyAkChain(chain.map((c) => c.cert.raw), [root.cert], Date.now()).notAttestationKey;
    const aik = { extKeyUsage: [TCG_KP_AIK_CERTIFICATE] };
    expect(fault([ak(issuing, aik), issuing])).toBeNull();
    // Beside other purposes, critical or not: the CA still said it.
    expect(fault([ak(issuing, { extKeyUsage: ['1.3.6.1.5.5.7.3.2', TCG_KP_AIK_CERTIFICATE], extKeyUsageCritical: true }), issuing])).toBeNull();
    expect(fault([ak(issuing), issuing])).toBe(`the AK certificate has no extendedKeyUsage (it must list tcg-kp-AIKCertificate ${TCG_KP_AIK_CERTIFICATE})`);
    expect(fault([ak(issuing, { extKeyUsage: ['1.3.6.1.5.5.7.3.2'] }), issuing])).toBe(`the AK certificate's extendedKeyUsage (1.3.6.1.5.5.7.3.2) lacks tcg-kp-AIKCertificate ${TCG_KP_AIK_CERTIFICATE}`);
    // anyExtendedKeyUsage, or a purpose one arc away (2.23.133.8.1, tcg-kp-EKCertificate), is not the AK purpose.
    expect(fault([ak(issuing, { extKeyUsage: ['2.5.29.37.0'] }), issuing])).toMatch(/lacks tcg-kp-AIKCertificate/);
    expect(fault([ak(issuing, { extKeyUsage: ['2.23.133.8.1'] }), issuing])).toMatch(/lacks tcg-kp-AIKCertificate/);
    // A CA that lists purposes certifies those only: an intermediate for client certificates, or a root that does.
    const clientCa = forgeCertificate({ cn: 'Client Issuing', key: forgeKey('ec-p256'), issuer: root, ca: true, extKeyUsage: ['1.3.6.1.5.5.7.3.2'], ...at });
    expect(fault([ak(clientCa, aik), clientCa])).toBe(`the CA certificate CN=Client Issuing restricts extendedKeyUsage to 1.3.6.1.5.5.7.3.2, without tcg-kp-AIKCertificate ${TCG_KP_AIK_CERTIFICATE}`);
    const aikCa = forgeCertificate({ cn: 'AIK Issuing', key: forgeKey('ec-p256'), issuer: root, ca: true, extKeyUsage: [TCG_KP_AIK_CERTIFICATE], ...at });
    expect(fault([ak(aikCa, aik), aikCa])).toBeNull();
    const clientRoot = forgeCertificate({ cn: 'Client Root', key: forgeKey('ec-p256'), ca: true, extKeyUsage: ['1.3.6.1.5.5.7.3.2'], ...at });
    expect(verifyAkChain([ak(clientRoot, aik).cert.raw], [clientRoot.cert], Date.now()).notAttestationKey).toMatch(/^the CA certificate CN=Client Root restricts/);
    // Reported, not refused here: without a policy the chain is as good as before.
    expect(verdict([ak(clientCa), clientCa])).toBe('ok');
  });
});
