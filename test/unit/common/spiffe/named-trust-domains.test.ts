// The trust domain a CA names comes from its parsed URI SANs. Outside audits: the CLI (and the proxy's
// control-plane bundle) read it with a regex over node:crypto's subjectAltName text, which quotes nothing, so a
// federated peer's CA with a DNS name (or a URI of another scheme) holding "URI:spiffe://example.org/x" made
// `tessera svid verify --jwt` file that peer's JWT keys under the local trust domain (23a); then a CA naming two
// foreign domains, or one with an upper-case scheme, counted as naming none and anchored the leaf's domain (24a).
import type { X509Certificate } from 'node:crypto';
import { expect, test } from 'vitest';
import { trustDomainOf } from '../../../../cli/bundle-trust-domain.js';
import { type CertificateTemplate, issueCertificate } from '../../../../common/pki/cert-builder.js';
import { generateKeyPair } from '../../../../common/pki/keys.js';
import { claimedTrustDomains, namedTrustDomains } from '../../../../common/spiffe/named-trust-domains.js';

async function ca(sans: Pick<CertificateTemplate, 'uriSans' | 'dnsSans'>): Promise<X509Certificate> {
  const key = generateKeyPair('ec-p256');
  return issueCertificate({ subject: 'CN=ca', publicKey: key.publicKey, signer: key, notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3_600_000), basicConstraints: { ca: true }, keyUsage: ['keyCertSign', 'cRLSign'], ...sans });
}

test('SPIFFE URI SANs name their trust domains, each once, in any scheme case', async () => {
  expect(namedTrustDomains(await ca({ uriSans: ['spiffe://example.org'] }))).toEqual(['example.org']);
  expect(namedTrustDomains(await ca({ uriSans: ['spiffe://example.org/a', 'spiffe://example.org/b'] }))).toEqual(['example.org']);
  expect(namedTrustDomains(await ca({ uriSans: ['spiffe://example.org', 'spiffe://other.test'] }))).toEqual(['example.org', 'other.test']);
  expect(namedTrustDomains(await ca({ uriSans: ['SPIFFE://evil.org'] }))).toEqual(['evil.org']);
  expect(claimedTrustDomains(await ca({ uriSans: ['https://x.test/'] }))).toEqual([]);
});

test('names that only look like a SPIFFE URI SAN in the subjectAltName text name no trust domain', async () => {
  const dnsFake = await ca({ dnsSans: ['URI:spiffe://example.org/x'] });
  const otherScheme = await ca({ uriSans: ['https://x/URI:spiffe://example.org/x'] });
  for (const cert of [dnsFake, otherScheme]) {
    // Why the text must not be read: node:crypto prints these with "URI:spiffe://example.org" inside.
    expect(cert.subjectAltName).toContain('URI:spiffe://example.org/x');
    expect(namedTrustDomains(cert)).toEqual([]);
  }
  expect(() => trustDomainOf([dnsFake, otherScheme], 'evil-bundle.json')).toThrow(/cannot tell the trust domain/);
  const good = await ca({ uriSans: ['spiffe://evil.test'] });
  expect(trustDomainOf([dnsFake, good], 'evil-bundle.json').name).toBe('evil.test');
});

test('a bundle whose CAs name several domains, or a malformed one, does not tell its trust domain', async () => {
  const two = await ca({ uriSans: ['spiffe://evil.org', 'spiffe://other.org'] });
  expect(() => trustDomainOf([two], 'b.json')).toThrow(/cannot tell the trust domain from b\.json \(found 2\)/);
  const upper = await ca({ uriSans: ['SPIFFE://Evil.ORG'] });
  expect(() => trustDomainOf([upper], 'b.json')).toThrow(/cannot tell the trust domain/);
  const [evil, local] = [await ca({ uriSans: ['spiffe://evil.org'] }), await ca({ uriSans: ['spiffe://example.org'] })];
  expect(() => trustDomainOf([evil, local], 'b.json')).toThrow(/found 2/);
});
