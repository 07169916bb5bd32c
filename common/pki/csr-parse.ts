// PKCS#10 certificate signing requests as the CA reads them: parsed and checked with @peculiar/x509 (the control
// plane and the CA tooling carry it anyway; the proxy, which only writes requests, does not — csr.ts).
import { type KeyObject, createPublicKey } from 'node:crypto';
import { TesseraError } from '../errors.js';
import { algorithmOf } from './keys.js';
import { x509 } from './x509-lib.js';

export interface ParsedCsr {
  readonly publicKey: KeyObject;
  /** Every SAN the CSR asks for, as "type:value" (e.g. "url:spiffe://…", "dns:x"). */
  readonly sans: readonly string[];
  readonly uriSans: readonly string[];
  readonly requestsCa: boolean;
}

/**
 * Parses and checks the CSR's self-signature and key; throws TESSERA_ERR_CSR_MALFORMED (not DER PKCS#10),
 * TESSERA_ERR_PKI_UNSUPPORTED_KEY (a weak or unknown key) or TESSERA_ERR_CSR_BAD_SIGNATURE.
 */
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
