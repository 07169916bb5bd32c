// Builds X.509 certificates (CAs and SVIDs) with @peculiar/x509 over WebCrypto. Used by the control plane's CA
// and by the test CA; the template is deliberately permissive so tests can mint every broken kind.
import { type KeyObject, X509Certificate, randomBytes } from 'node:crypto';
import { type KeyPair, algorithmOf, signingAlgorithm, toWebCryptoPair, toWebPublicKey } from './keys.js';
import { x509 } from './x509-lib.js';

export type KeyUsageName = 'digitalSignature' | 'keyEncipherment' | 'keyAgreement' | 'keyCertSign' | 'cRLSign';

export interface CertificateTemplate {
  /** Distinguished name, e.g. "CN=Tessera Root CA, O=Tessera". */
  readonly subject: string;
  readonly publicKey: KeyObject;
  /** Absent for a self-signed certificate (then `signer` signs itself). */
  readonly issuer?: X509Certificate;
  readonly signer: KeyPair;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly serialHex?: string;
  /** basicConstraints: `{ ca: true, pathLength }` for CAs, `{ ca: false }` for leaves, null to omit. */
  readonly basicConstraints?: { readonly ca: boolean; readonly pathLength?: number } | null;
  readonly keyUsage?: readonly KeyUsageName[] | null;
  readonly uriSans?: readonly string[];
  readonly dnsSans?: readonly string[];
  readonly extKeyUsage?: readonly ('serverAuth' | 'clientAuth')[];
  /** Raw extensions appended as given (tests mint unknown critical ones); `value` is the DER inside the OCTET STRING. */
  readonly extraExtensions?: readonly { readonly oid: string; readonly critical: boolean; readonly value: Uint8Array }[];
}

const KU_FLAG: Readonly<Record<KeyUsageName, number>> = {
  digitalSignature: x509.KeyUsageFlags.digitalSignature,
  keyEncipherment: x509.KeyUsageFlags.keyEncipherment,
  keyAgreement: x509.KeyUsageFlags.keyAgreement,
  keyCertSign: x509.KeyUsageFlags.keyCertSign,
  cRLSign: x509.KeyUsageFlags.cRLSign,
};
const EKU_OID = { serverAuth: '1.3.6.1.5.5.7.3.1', clientAuth: '1.3.6.1.5.5.7.3.2' } as const;

/** A random positive 128-bit serial, as lower-case hex. */
export function randomSerialHex(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString('hex');
}

export async function issueCertificate(t: CertificateTemplate): Promise<X509Certificate> {
  const signerWeb = toWebCryptoPair(t.signer);
  const subjectWebKey = toWebPublicKey(t.publicKey);
  const extensions: x509.Extension[] = [];
  if (t.basicConstraints !== null) {
    const bc = t.basicConstraints ?? { ca: false };
    extensions.push(new x509.BasicConstraintsExtension(bc.ca, bc.pathLength, true));
  }
  if (t.keyUsage !== null && t.keyUsage !== undefined) {
    extensions.push(new x509.KeyUsagesExtension(t.keyUsage.reduce((f, k) => f | KU_FLAG[k], 0), true));
  }
  const sans = [
    ...(t.uriSans ?? []).map((value) => ({ type: 'url' as const, value })),
    ...(t.dnsSans ?? []).map((value) => ({ type: 'dns' as const, value })),
  ];
  // RFC 5280: with an empty subject the SAN extension must be critical.
  if (sans.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(sans, t.subject === ''));
  if (t.extKeyUsage?.length) extensions.push(new x509.ExtendedKeyUsageExtension(t.extKeyUsage.map((u) => EKU_OID[u])));
  for (const e of t.extraExtensions ?? []) extensions.push(new x509.Extension(e.oid, e.critical, Buffer.from(e.value)));
  extensions.push(await x509.SubjectKeyIdentifierExtension.create(subjectWebKey));
  const issuerPublic = t.issuer ? toWebPublicKey(t.issuer.publicKey) : subjectWebKey;
  extensions.push(await x509.AuthorityKeyIdentifierExtension.create(issuerPublic));

  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: t.serialHex ?? randomSerialHex(),
    subject: t.subject,
    // The issuer name is copied as encoded so that name chaining matches byte for byte.
    issuer: t.issuer ? new x509.X509Certificate(t.issuer.raw).subjectName : t.subject,
    notBefore: t.notBefore,
    notAfter: t.notAfter,
    signingAlgorithm: signingAlgorithm(algorithmOf(t.signer.publicKey)),
    publicKey: subjectWebKey,
    signingKey: signerWeb.privateKey,
    extensions,
  });
  return new X509Certificate(Buffer.from(cert.rawData));
}
