// Reads and checks a PKCS#10 CSR straight from DER: structure, self-signature (node:crypto), key strength, and
// every requested extension the CA judges (SANs, basicConstraints, keyUsage). No pure-JS ASN.1 on this path.
import { type KeyObject, createPublicKey, verify } from 'node:crypto';
import { TesseraError } from '../../../common/errors.js';
import { type DerNode, DerError, bytesOf, children, readNode } from '../../../common/pki/der.js';
import { algorithmOf } from '../../../common/pki/keys.js';
import { RSA_SIZES, bitLength, rsaExponentWeakness, rsaSizeWeakness } from '../../../common/pki/rsa-key-strength.js';

export interface CsrSan {
  /** "uri", "dns", "email", "ip" or "other". */
  readonly type: string;
  readonly value: string;
}

export interface CheckedCsr {
  readonly publicKey: KeyObject;
  /** SubjectPublicKeyInfo, DER, as re-encoded by node:crypto. */
  readonly spkiDer: Buffer;
  readonly algorithm: 'ec-p256' | 'rsa-2048';
  readonly sans: readonly CsrSan[];
  /** basicConstraints cA=true, or keyUsage keyCertSign / cRLSign. */
  readonly requestsCa: boolean;
}

const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const OID_SAN = '2.5.29.17';
const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const OID_KEY_USAGE = '2.5.29.15';
/**
 * CSR signature algorithms accepted, with the digest node:crypto uses and the key type the algorithm names: an
 * ECDSA signature label on an RSA key (or the reverse) is refused, as `openssl req -verify` does.
 */
const SIGNATURE_ALGORITHMS: Readonly<Record<string, { readonly digest: string; readonly keyType: 'ec' | 'rsa' }>> = {
  '1.2.840.10045.4.3.2': { digest: 'sha256', keyType: 'ec' },
  '1.2.840.10045.4.3.3': { digest: 'sha384', keyType: 'ec' },
  '1.2.840.10045.4.3.4': { digest: 'sha512', keyType: 'ec' },
  '1.2.840.113549.1.1.11': { digest: 'sha256', keyType: 'rsa' },
  '1.2.840.113549.1.1.12': { digest: 'sha384', keyType: 'rsa' },
  '1.2.840.113549.1.1.13': { digest: 'sha512', keyType: 'rsa' },
};
/** A P-256 SubjectPublicKeyInfo up to its point: id-ecPublicKey, the named curve prime256v1, a 66-byte BIT STRING. */
const P256_SPKI_HEAD = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
const SAN_TYPES: Readonly<Record<number, string>> = { 129: 'email', 130: 'dns', 134: 'uri', 135: 'ip' };

export function decodeOid(bytes: Uint8Array): string {
  if (bytes.length === 0) throw new DerError('empty OID');
  const parts = [Math.floor(bytes[0]! / 40), bytes[0]! % 40];
  let v = 0;
  for (let i = 1; i < bytes.length; i++) {
    v = v * 128 + (bytes[i]! & 0x7f);
    if (!(bytes[i]! & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

// A missing node (a SEQUENCE with too few children) is malformed input, not an internal fault.
function expectTag(node: DerNode | undefined, tag: number, what: string): DerNode {
  if (!node) throw new DerError(`${what}: missing`);
  if (node.tag !== tag) throw new DerError(`${what}: unexpected tag 0x${node.tag.toString(16)}`);
  return node;
}

function malformed(detail: string): TesseraError {
  return new TesseraError('TESSERA_ERR_CSR_MALFORMED', `CSR is not valid DER PKCS#10: ${detail}`);
}

/**
 * Parses, verifies and inspects a CSR. Throws CSR_MALFORMED, CSR_BAD_SIGNATURE or PKI_UNSUPPORTED_KEY. An RSA
 * key's size and exponent are judged before its signature; its other rules (rsa-key-strength.ts) later, for attested
 * callers only: they cost milliseconds.
 */
export function readCsr(der: Uint8Array): CheckedCsr {
  let info: DerNode;
  let sigAlg: string;
  let signature: Uint8Array;
  let spkiRaw: Uint8Array;
  let attributes: DerNode | undefined;
  let infoStart: number;
  let sigParams: DerNode | undefined;
  try {
    const root = expectTag(readNode(der, 0), 0x30, 'CertificationRequest');
    if (root.end !== der.length) throw new DerError('trailing bytes after the CSR');
    const [i, alg, sig, ...extra] = children(der, root);
    if (!i || !alg || !sig || extra.length) throw new DerError('CertificationRequest needs exactly 3 fields');
    info = expectTag(i, 0x30, 'CertificationRequestInfo');
    infoStart = root.start;
    const [algOid, params, ...more] = children(der, expectTag(alg, 0x30, 'signatureAlgorithm'));
    sigAlg = decodeOid(bytesOf(der, expectTag(algOid, 0x06, 'algorithm')));
    // The accepted algorithms take no parameters: absent, or NULL for RSA. Anything else is not what was signed
    // for, and openssl refuses it.
    if (more.length || (params && (params.tag !== 0x05 || params.end !== params.start))) throw new DerError('signatureAlgorithm parameters must be absent or NULL');
    sigParams = params;
    const sigBits = bytesOf(der, expectTag(sig, 0x03, 'signature'));
    if (sigBits[0] !== 0) throw new DerError('signature has unused bits');
    signature = sigBits.subarray(1);
    const fields = children(der, info);
    if (fields.length < 3 || fields.length > 4) throw new DerError('CertificationRequestInfo has a wrong field count');
    const version = bytesOf(der, expectTag(fields[0]!, 0x02, 'version'));
    if (version.length !== 1 || version[0] !== 0) throw new DerError('version must be 0 (v1)');
    expectTag(fields[1]!, 0x30, 'subject');
    const spki = expectTag(fields[2]!, 0x30, 'subjectPKInfo');
    // A child's header starts where its previous sibling ends.
    spkiRaw = der.subarray(fields[1]!.end, spki.end);
    attributes = fields[3] ? expectTag(fields[3], 0xa0, 'attributes') : undefined;
  } catch (e) {
    if (e instanceof DerError) throw malformed(e.message);
    throw e;
  }
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: Buffer.from(spkiRaw), format: 'der', type: 'spki' });
  } catch (e) {
    throw malformed(`unreadable public key (${(e as Error).message})`);
  }
  // Before the signature check, which an unattested caller can ask for: verifying with a 16,384-bit modulus costs
  // ~7 ms of the event loop where P-256 costs ~1 ms (audit 55c F2). Any size the CA would refuse later is refused now.
  const rsaBits = publicKey.asymmetricKeyType === 'rsa' ? publicKey.asymmetricKeyDetails?.modulusLength : undefined;
  const size = rsaBits === undefined ? null : rsaSizeWeakness(rsaBits);
  if (size) throw new TesseraError('TESSERA_ERR_PKI_UNSUPPORTED_KEY', `the CSR's RSA key has ${size}: use ECDSA P-256 or ${RSA_SIZES}`);
  const algorithm = algorithmOf(publicKey);
  if (!inItsDerEncoding(spkiRaw, publicKey)) {
    throw malformed('the public key is not in its one DER encoding (an RSA key: minimal positive integers, NULL parameters, nothing after them; an EC key: the named curve and an uncompressed point)');
  }
  // Likewise a large RSA exponent, by the one rule every key read is held to (the full key rules run later, for
  // attested callers: rsa-key-strength.ts).
  const exponent = publicKey.asymmetricKeyDetails?.publicExponent;
  const large = exponent === undefined ? null : rsaExponentWeakness(bitLength(exponent));
  if (large) throw new TesseraError('TESSERA_ERR_PKI_WEAK_KEY', `the CSR's RSA key has ${large}`);
  const signedWith = SIGNATURE_ALGORITHMS[sigAlg];
  // An algorithm outside the accepted ones (ecdsa-with-SHA1, ...) is malformed even when correctly self-signed, as
  // docs/control-plane.md says; one that names another key type than the CSR's cannot be its signature.
  if (!signedWith) throw malformed(`unsupported CSR signature algorithm ${sigAlg}`);
  if (signedWith.keyType !== publicKey.asymmetricKeyType) {
    throw new TesseraError('TESSERA_ERR_CSR_BAD_SIGNATURE', `CSR signature algorithm ${sigAlg} does not fit its ${publicKey.asymmetricKeyType} key`);
  }
  // RFC 5758 section 3.2: the ECDSA algorithms take no parameters, not even NULL.
  if (signedWith.keyType === 'ec' && sigParams) throw malformed('ECDSA signatureAlgorithm parameters must be absent');
  const digest = signedWith.digest;
  // CertificationRequestInfo is the first child of the outer SEQUENCE: its header starts at the root's content.
  const infoBytes = der.subarray(infoStart, info.end);
  let ok = false;
  try {
    ok = verify(digest, infoBytes, publicKey, signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new TesseraError('TESSERA_ERR_CSR_BAD_SIGNATURE');
  let sans: CsrSan[] = [];
  let requestsCa = false;
  try {
    if (attributes) ({ sans, requestsCa } = readExtensionRequest(der, attributes));
  } catch (e) {
    if (e instanceof DerError) throw malformed(e.message);
    throw e;
  }
  return { publicKey, spkiDer: publicKey.export({ type: 'spki', format: 'der' }), algorithm, sans, requestsCa };
}

/**
 * The SubjectPublicKeyInfo is the key's one DER encoding. OpenSSL reads lax forms (a non-minimal or negative
 * modulus, parameters other than NULL, bytes after the key, explicit curve parameters, a hybrid or compressed point)
 * that other verifiers refuse or read otherwise; Go's x509, for one, reads no compressed point. OpenSSL re-encodes
 * an RSA key canonically, but keeps an EC key's point form and explicit parameters: that one is checked by bytes.
 */
function inItsDerEncoding(raw: Uint8Array, key: KeyObject): boolean {
  if (key.asymmetricKeyType === 'ec') return raw.length === P256_SPKI_HEAD.length + 65 && P256_SPKI_HEAD.equals(raw.subarray(0, P256_SPKI_HEAD.length)) && raw[P256_SPKI_HEAD.length] === 0x04;
  return key.export({ type: 'spki', format: 'der' }).equals(raw);
}

function readExtensionRequest(der: Uint8Array, attributes: DerNode): { sans: CsrSan[]; requestsCa: boolean } {
  const sans: CsrSan[] = [];
  let requestsCa = false;
  const seen = new Set<string>();
  for (const attr of children(der, attributes)) {
    const [type, values] = children(der, expectTag(attr, 0x30, 'Attribute'));
    if (!type || !values) throw new DerError('Attribute needs a type and values');
    if (decodeOid(bytesOf(der, expectTag(type, 0x06, 'attribute type'))) !== OID_EXTENSION_REQUEST) continue;
    for (const exts of children(der, expectTag(values, 0x31, 'attribute values'))) {
      for (const ext of children(der, expectTag(exts, 0x30, 'Extensions'))) {
        const parts = children(der, expectTag(ext, 0x30, 'Extension'));
        if (parts.length < 2 || parts.length > 3) throw new DerError('Extension needs an id and a value');
        const id = decodeOid(bytesOf(der, expectTag(parts[0], 0x06, 'extnID')));
        const valueNode = expectTag(parts[parts.length - 1], 0x04, 'extnValue');
        if (seen.has(id)) throw new DerError(`extension ${id} requested twice`);
        seen.add(id);
        const value = bytesOf(der, valueNode);
        if (id === OID_SAN) sans.push(...readSans(value));
        else if (id === OID_BASIC_CONSTRAINTS) requestsCa ||= basicConstraintsCa(value);
        else if (id === OID_KEY_USAGE) requestsCa ||= keyUsageCaBits(value);
      }
    }
  }
  return { sans, requestsCa };
}

function readSans(value: Uint8Array): CsrSan[] {
  const seq = expectTag(readNode(value, 0), 0x30, 'GeneralNames');
  if (seq.end !== value.length) throw new DerError('trailing bytes in subjectAltName');
  return children(value, seq).map((n) => {
    const type = SAN_TYPES[n.tag] ?? 'other';
    const raw = Buffer.from(bytesOf(value, n));
    return { type, value: type === 'ip' ? [...raw].join('.') : type === 'other' ? raw.toString('hex') : raw.toString('latin1') };
  });
}

function basicConstraintsCa(value: Uint8Array): boolean {
  const seq = expectTag(readNode(value, 0), 0x30, 'BasicConstraints');
  const first = children(value, seq)[0];
  return first !== undefined && first.tag === 0x01 && bytesOf(value, first)[0] !== 0;
}

function keyUsageCaBits(value: Uint8Array): boolean {
  const bits = bytesOf(value, expectTag(readNode(value, 0), 0x03, 'KeyUsage'));
  // bits[0] = unused-bit count; keyCertSign is bit 5 (0x04), cRLSign bit 6 (0x02) of the first byte.
  return ((bits[1] ?? 0) & 0x06) !== 0;
}
