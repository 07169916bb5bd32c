// PKCS#10 certificate signing requests, written where the key lives (the proxy, `tessera svid fetch`, an offline
// intermediate's request) with the DER writer and node:crypto's signer: no ASN.1 library in a sidecar's memory.
// The CA reads them with csr-parse.ts.
import { sign } from 'node:crypto';
import type { KeyPair } from './keys.js';
import { bitString, booleanTrue, contextTag, extension, ia5Bytes, nullValue, oid, printableString, sequence, set, smallInteger, utf8String } from './der-writer.js';

export interface CsrRequest {
  /** Distinguished name as "CN=…, O=…" (keys CN, O, OU, L, ST, C; no commas inside values); default "O=Tessera" (an SVID's identity is its URI SAN). */
  readonly subject?: string;
  readonly uriSans?: readonly string[];
  readonly dnsSans?: readonly string[];
  /** Only for requests that ask for CA rights (an offline intermediate, tests). */
  readonly requestCa?: boolean;
}

const NAME_KEYS: Readonly<Record<string, string>> = { CN: '2.5.4.3', C: '2.5.4.6', L: '2.5.4.7', ST: '2.5.4.8', O: '2.5.4.10', OU: '2.5.4.11' };
const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const OID_SUBJECT_ALT_NAME = '2.5.29.17';
const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const SIGNATURE_ALGORITHM = {
  'ec-p256': () => sequence(oid('1.2.840.10045.4.3.2')), // ecdsa-with-SHA256, no parameters (RFC 5758)
  'rsa-2048': () => sequence(oid('1.2.840.113549.1.1.11'), nullValue()), // sha256WithRSAEncryption, NULL parameters
} as const;

/** One RDN per "KEY=value", in the order given. */
function name(dn: string): Buffer {
  const rdns = dn.split(',').map((part) => {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq).trim().toUpperCase();
    const value = part.slice(eq + 1).trim();
    const type = NAME_KEYS[key];
    if (eq < 0 || type === undefined || value === '') throw new RangeError(`unsupported distinguished name part: ${part.trim()}`);
    return set(sequence(oid(type), key === 'C' ? printableString(value) : utf8String(value)));
  });
  return sequence(...rdns);
}

function extensions(req: CsrRequest): Buffer[] {
  const out: Buffer[] = [];
  // GeneralName: uniformResourceIdentifier [6] and dNSName [2], IMPLICIT IA5String.
  const sans = [...(req.uriSans ?? []).map((v) => contextTag(6, false, ia5Bytes(v))), ...(req.dnsSans ?? []).map((v) => contextTag(2, false, ia5Bytes(v)))];
  if (sans.length > 0) out.push(extension(OID_SUBJECT_ALT_NAME, false, sequence(...sans)));
  if (req.requestCa) out.push(extension(OID_BASIC_CONSTRAINTS, true, sequence(booleanTrue())));
  return out;
}

export async function createCsr(pair: KeyPair, req: CsrRequest): Promise<Buffer> {
  const exts = extensions(req);
  const attributes = exts.length > 0 ? [sequence(oid(OID_EXTENSION_REQUEST), set(sequence(...exts)))] : [];
  const info = sequence(
    smallInteger(0),
    name(req.subject ?? 'O=Tessera'),
    pair.publicKey.export({ type: 'spki', format: 'der' }),
    contextTag(0, true, ...attributes), // attributes [0] IMPLICIT SET OF Attribute: present even when empty
  );
  // ECDSA: DER-encoded (r, s), as X.509 wants; RSA: PKCS#1 v1.5.
  const signature = sign('sha256', info, { key: pair.privateKey, dsaEncoding: 'der' });
  return sequence(info, SIGNATURE_ALGORITHM[pair.algorithm](), bitString(signature));
}
