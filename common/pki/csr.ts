// PKCS#10 certificate signing requests: created where the key lives (the proxy), inspected by the CA.
import { type KeyObject, createPublicKey } from 'node:crypto';
import { TesseraError } from '../errors.js';
import { type KeyPair, algorithmOf, signingAlgorithm, toWebCryptoPair } from './keys.js';
import { x509 } from './x509-lib.js';

export interface CsrRequest {
  /** Distinguished name; default "O=Tessera" (an SVID's identity is its URI SAN). */
  readonly subject?: string;
  readonly uriSans?: readonly string[];
  readonly dnsSans?: readonly string[];
  /** Only for tests that need a CSR asking for CA rights. */
  readonly requestCa?: boolean;
}

export async function createCsr(pair: KeyPair, req: CsrRequest): Promise<Buffer> {
  const extensions: x509.Extension[] = [];
  const sans = [
    ...(req.uriSans ?? []).map((value) => ({ type: 'url' as const, value })),
    ...(req.dnsSans ?? []).map((value) => ({ type: 'dns' as const, value })),
  ];
  if (sans.length) extensions.push(new x509.SubjectAlternativeNameExtension(sans));
  if (req.requestCa) extensions.push(new x509.BasicConstraintsExtension(true, undefined, true));
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: req.subject ?? 'O=Tessera',
    keys: toWebCryptoPair(pair),
    signingAlgorithm: signingAlgorithm(pair.algorithm),
    extensions,
  });
  return Buffer.from(csr.rawData);
}

export interface ParsedCsr {
  readonly publicKey: KeyObject;
  /** Every SAN the CSR asks for, as "type:value" (e.g. "url:spiffe://…", "dns:x"). */
  readonly sans: readonly string[];
  readonly uriSans: readonly string[];
  readonly requestsCa: boolean;
}

/** Parses and checks the CSR's self-signature and key; throws TESSERA_ERR_ISSUANCE_BAD_CSR-class errors. */
export async function parseCsr(der: Uint8Array): Promise<ParsedCsr> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(Buffer.from(der));
  } catch (e) {
    throw new TesseraError('TESSERA_ERR_CSR_MALFORMED', `CSR is not valid DER PKCS#10: ${(e as Error).message}`);
  }
  const publicKey = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
  algorithmOf(publicKey); // throws TESSERA_ERR_PKI_UNSUPPORTED_KEY for weak or unknown keys
  let signatureOk = false;
  try {
    signatureOk = await csr.verify();
  } catch {
    signatureOk = false;
  }
  if (!signatureOk) throw new TesseraError('TESSERA_ERR_CSR_BAD_SIGNATURE');
  const exts = csr.extensions;
  const sanExt = exts.find((e): e is x509.SubjectAlternativeNameExtension => e instanceof x509.SubjectAlternativeNameExtension);
  const names = sanExt ? sanExt.names.items : [];
  const sans = names.map((n) => `${n.type}:${n.value}`);
  const uriSans = names.filter((n) => n.type === 'url').map((n) => n.value);
  const bc = exts.find((e): e is x509.BasicConstraintsExtension => e instanceof x509.BasicConstraintsExtension);
  return { publicKey, sans, uriSans, requestsCa: bc?.ca === true };
}
