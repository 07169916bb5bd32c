// The trust domain a CA names comes from its parsed URI SANs. An outside audit: the CLI (and the proxy's
// control-plane bundle) read it with a regex over node:crypto's subjectAltName text, which quotes nothing, so a
// federated peer's CA with a DNS name (or a URI of another scheme) holding "URI:spiffe://example.org/x" made
// `tessera svid verify --jwt` file that peer's JWT keys under the local trust domain.
import { expect, test } from 'vitest';
import { trustDomainOf } from '../../../../cli/commands/svid-fetch.js';
import { type CertificateTemplate, issueCertificate } from '../../../../common/pki/cert-builder.js';
import { generateKeyPair } from '../../../../common/pki/keys.js';
import { namedTrustDomains, soleNamedTrustDomain } from '../../../../common/spiffe/named-trust-domains.js';

async function ca(sans: Pick<CertificateTemplate, 'uriSans' | 'dnsSans'>) {
  const key = generateKeyPair('ec-p256');
  return issueCertificate({ subject: 'CN=ca', publicKey: key.publicKey, signer: key, notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3_600_000), basicConstraints: { ca: true }, keyUsage: ['keyCertSign', 'cRLSign'], ...sans });
}

test('a SPIFFE URI SAN names its trust domain; several names are not one', async () => {
  const plain = await ca({ uriSans: ['spiffe://example.org'] });
  expect(namedTrustDomains(plain)).toEqual(['example.org']);
  expect(soleNamedTrustDomain(plain)).toBe('example.org');
  expect(soleNamedTrustDomain(await ca({ uriSans: ['spiffe://example.org/a', 'spiffe://example.org/b'] }))).toBe('example.org');
  const two = await ca({ uriSans: ['spiffe://example.org', 'spiffe://other.test'] });
  expect(namedTrustDomains(two)).toEqual(['example.org', 'other.test']);
  expect(soleNamedTrustDomain(two)).toBeUndefined();
});

test('names that only look like a SPIFFE URI SAN in the subjectAltName text name no trust domain', async () => {
  const dnsFake = await ca({ dnsSans: ['URI:spiffe://example.org/x'] });
  const otherScheme = await ca({ uriSans: ['https://x/URI:spiffe://example.org/x'] });
  const upper = await ca({ uriSans: ['SPIFFE://example.org'] });
  for (const cert of [dnsFake, otherScheme]) {
    // Why the text must not be read: node:crypto prints these with "URI:spiffe://example.org" inside.
    expect(cert.subjectAltName).toContain('URI:spiffe://example.org/x');
    expect(namedTrustDomains(cert)).toEqual([]);
    expect(soleNamedTrustDomain(cert)).toBeUndefined();
  }
  expect(soleNamedTrustDomain(upper)).toBeUndefined();
  expect(() => trustDomainOf([dnsFake, otherScheme], 'evil-bundle.json')).toThrow(/TESSERA_ERR_CLI_USAGE|cannot tell the trust domain/);
  const good = await ca({ uriSans: ['spiffe://evil.test'] });
  expect(trustDomainOf([dnsFake, good], 'evil-bundle.json').name).toBe('evil.test');
});
