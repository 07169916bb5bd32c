// The X.509 fields the SVID rules need (URI and DNS SANs, basicConstraints with its path length, keyUsage,
// extendedKeyUsage, critical extensions this code does not understand, the signature algorithm and the subject
// key's type and size), read straight from DER — never from Node's `subjectaltname` string form. Reading only:
// what is acceptable is decided in x509-svid.ts and x509-strength.ts.
import { type DerNode, DerError, bytesOf, children, equalBytes, readNode } from '../pki/der.js';

const OID_BASIC_CONSTRAINTS = Uint8Array.of(0x55, 0x1d, 0x13);
const OID_KEY_USAGE = Uint8Array.of(0x55, 0x1d, 0x0f);
const OID_SUBJECT_ALT_NAME = Uint8Array.of(0x55, 0x1d, 0x11);
const OID_EXT_KEY_USAGE = Uint8Array.of(0x55, 0x1d, 0x25);
const OID_NAME_CONSTRAINTS = Uint8Array.of(0x55, 0x1d, 0x1e);
/** Extensions whose meaning is checked here or by the path builder (EKU, key identifiers): critical is fine. */
const UNDERSTOOD = [
  OID_BASIC_CONSTRAINTS,
  OID_KEY_USAGE,
  OID_SUBJECT_ALT_NAME,
  OID_EXT_KEY_USAGE,
  OID_NAME_CONSTRAINTS,
  Uint8Array.of(0x55, 0x1d, 0x0e), // subjectKeyIdentifier
  Uint8Array.of(0x55, 0x1d, 0x23), // authorityKeyIdentifier
];
const OID_RSA_ENCRYPTION = '1.2.840.113549.1.1.1';
const OID_RSASSA_PSS = '1.2.840.113549.1.1.10';
const OID_EC_PUBLIC_KEY = '1.2.840.10045.2.1';
/** RSASSA-PSS-params without a hashAlgorithm mean SHA-1 (RFC 4055 §3.1). */
const OID_SHA1 = '1.3.14.3.2.26';

export interface KeyUsage {
  readonly digitalSignature: boolean;
  readonly keyCertSign: boolean;
  readonly cRLSign: boolean;
}

/** The subject public key, as far as its strength goes. */
export type KeyInfo =
  /** `bits`: the modulus's; `exponentBits`: the public exponent's (its cost in every signature check). */
  | { readonly type: 'rsa'; readonly bits: number; readonly exponentBits: number }
  /** `curve`: the dotted OID of the named curve; '' for explicit curve parameters. */
  | { readonly type: 'ec'; readonly curve: string }
  /** Any other algorithm (Ed25519, DSA, …), or an RSA key whose modulus or exponent cannot be read: its dotted OID. */
  | { readonly type: 'other'; readonly oid: string };

export interface SignatureAlgorithm {
  /** Dotted OID of the certificate's signatureAlgorithm. */
  readonly oid: string;
  /** For RSASSA-PSS only: the dotted OID of the hash its parameters name. */
  readonly pssHash?: string;
}

/** One GeneralSubtree: a URI or DNS constraint, or one the path check does not evaluate (`what`: why, for a refusal). */
export type NameSubtree = { readonly type: 'uri' | 'dns'; readonly value: string } | { readonly type: 'other'; readonly what: string };

/** A CA's nameConstraints (RFC 5280 §4.2.1.10). */
export interface NameConstraints {
  readonly permitted: readonly NameSubtree[];
  readonly excluded: readonly NameSubtree[];
}

export interface CertFields {
  readonly uriSans: readonly string[];
  readonly dnsSans: readonly string[];
  readonly isCa: boolean;
  /** basicConstraints pathLenConstraint; null when absent (no limit). */
  readonly pathLen: number | null;
  /** Null when the certificate has no keyUsage extension. */
  readonly keyUsage: KeyUsage | null;
  /** extendedKeyUsage KeyPurposeIds as dotted OIDs; null when the certificate has no such extension. */
  readonly extKeyUsage: readonly string[] | null;
  /** Null when the certificate has no nameConstraints extension. */
  readonly nameConstraints: NameConstraints | null;
  /** Dotted OIDs of critical extensions not in UNDERSTOOD (RFC 5280 §4.2: the certificate must be rejected). */
  readonly unknownCritical: readonly string[];
  /** What the issuer signed this certificate with (the outer field: X509_verify refuses one unlike the TBS's). */
  readonly signature: SignatureAlgorithm;
  readonly key: KeyInfo;
  /** Subject and issuer are the same name, byte for byte (RFC 5280 "self-issued": pathLenConstraint skips it). */
  readonly selfIssued: boolean;
}

/** Throws DerError on malformed input, including an extension that appears twice (RFC 5280 §4.2). */
export function readCertFields(der: Uint8Array): CertFields {
  const cert = readNode(der, 0);
  const [tbs, sigAlg] = children(der, cert);
  if (!tbs || !sigAlg) throw new DerError('certificate without a TBSCertificate and signatureAlgorithm');
  const tbsParts = children(der, tbs);
  // TBSCertificate: [0] version (optional), serial, signature, issuer, validity, subject, subjectPublicKeyInfo, …
  const base = tbsParts[0]?.tag === 0xa0 ? 1 : 0;
  const issuer = tbsParts[base + 2];
  const subject = tbsParts[base + 4];
  const spki = tbsParts[base + 5];
  if (!issuer || !subject || !spki || spki.tag !== 0x30) throw new DerError('TBSCertificate is missing fields');
  // Extensions are the [3] EXPLICIT element of TBSCertificate.
  const extsWrapper = tbsParts.find((n) => n.tag === 0xa3);
  let uriSans: string[] = [];
  let dnsSans: string[] = [];
  let basic: { isCa: boolean; pathLen: number | null } = { isCa: false, pathLen: null };
  let keyUsage: KeyUsage | null = null;
  let extKeyUsage: string[] | null = null;
  let nameConstraints: NameConstraints | null = null;
  const unknownCritical: string[] = [];
  if (extsWrapper) {
    const [extSeq] = children(der, extsWrapper);
    const seen: Uint8Array[] = [];
    for (const ext of extSeq ? children(der, extSeq) : []) {
      const parts = children(der, ext);
      const oid = parts[0];
      const value = parts[parts.length - 1];
      if (!oid || !value || oid.tag !== 0x06 || value.tag !== 0x04 || parts.length > 3) throw new DerError('malformed extension');
      const flag = parts.length === 3 ? parts[1]! : undefined;
      if (flag && (flag.tag !== 0x01 || flag.end - flag.start !== 1)) throw new DerError('malformed extension criticality');
      const critical = flag !== undefined && der[flag.start] !== 0;
      const oidBytes = bytesOf(der, oid);
      if (seen.some((s) => equalBytes(s, oidBytes))) throw new DerError(`extension ${oidText(oidBytes)} appears twice`);
      seen.push(oidBytes);
      const inner = readNode(der, value.start, value.end);
      if (inner.end !== value.end) throw new DerError('trailing bytes in an extension value');
      if (equalBytes(oidBytes, OID_SUBJECT_ALT_NAME)) ({ uriSans, dnsSans } = readSans(der, inner));
      else if (equalBytes(oidBytes, OID_BASIC_CONSTRAINTS)) basic = readBasicConstraints(der, inner);
      else if (equalBytes(oidBytes, OID_KEY_USAGE)) keyUsage = readKeyUsage(der, inner);
      else if (equalBytes(oidBytes, OID_EXT_KEY_USAGE)) extKeyUsage = readExtKeyUsage(der, inner);
      else if (equalBytes(oidBytes, OID_NAME_CONSTRAINTS)) nameConstraints = readNameConstraints(der, inner);
      if (critical && !UNDERSTOOD.some((u) => equalBytes(u, oidBytes))) unknownCritical.push(oidText(oidBytes));
    }
  }
  return {
    uriSans,
    dnsSans,
    isCa: basic.isCa,
    pathLen: basic.pathLen,
    keyUsage,
    extKeyUsage,
    nameConstraints,
    unknownCritical,
    signature: readSignatureAlgorithm(der, sigAlg),
    key: readKeyInfo(der, spki),
    selfIssued: equalBytes(bytesOf(der, issuer), bytesOf(der, subject)),
  };
}

function readSans(der: Uint8Array, seq: DerNode): { uriSans: string[]; dnsSans: string[] } {
  if (seq.tag !== 0x30) throw new DerError('subjectAltName is not a SEQUENCE');
  // uniformResourceIdentifier is [6] IMPLICIT IA5String (0x86), dNSName [2] IMPLICIT IA5String (0x82).
  const names = children(der, seq);
  const text = (n: DerNode) => Buffer.from(bytesOf(der, n)).toString('latin1');
  return { uriSans: names.filter((n) => n.tag === 0x86).map(text), dnsSans: names.filter((n) => n.tag === 0x82).map(text) };
}

/**
 * NameConstraints ::= SEQUENCE { permittedSubtrees [0] GeneralSubtrees OPTIONAL, excludedSubtrees [1] … }, each a
 * SEQUENCE OF GeneralSubtree ::= SEQUENCE { base GeneralName, minimum [0], maximum [1] }.
 */
function readNameConstraints(der: Uint8Array, seq: DerNode): NameConstraints {
  if (seq.tag !== 0x30) throw new DerError('nameConstraints is not a SEQUENCE');
  // Exactly [0] then [1], each at most once, constructed: any other child is refused, never skipped (a skipped
  // subtree is a constraint OpenSSL enforces and this check would not).
  const parts = children(der, seq);
  const permitted = parts[0]?.tag === 0xa0 ? parts[0] : undefined;
  const excluded = parts[permitted ? 1 : 0]?.tag === 0xa1 ? parts[permitted ? 1 : 0] : undefined;
  if (parts.length !== (permitted ? 1 : 0) + (excluded ? 1 : 0)) throw new DerError('nameConstraints holds something other than [0] permittedSubtrees and [1] excludedSubtrees');
  const subtrees = (list: DerNode | undefined): NameSubtree[] =>
    (list ? children(der, list) : []).map((sub) => {
      const [base, ...bounds] = sub.tag === 0x30 ? children(der, sub) : [];
      if (!base) throw new DerError('malformed GeneralSubtree');
      // RFC 5280: minimum 0 (DEFAULT, so absent in DER) and no maximum; OpenSSL refuses any other (error 49).
      if (bounds.length > 0) return { type: 'other', what: 'a GeneralSubtree with a minimum or maximum' };
      const text = () => Buffer.from(bytesOf(der, base)).toString('latin1');
      // uniformResourceIdentifier [6] and dNSName [2], IMPLICIT IA5String.
      return base.tag === 0x86 ? { type: 'uri', value: text() } : base.tag === 0x82 ? { type: 'dns', value: text() } : { type: 'other', what: `GeneralName tag 0x${base.tag.toString(16)}` };
    });
  return { permitted: subtrees(permitted), excluded: subtrees(excluded) };
}

/** BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER (0..MAX) OPTIONAL }. */
function readBasicConstraints(der: Uint8Array, seq: DerNode): { isCa: boolean; pathLen: number | null } {
  if (seq.tag !== 0x30) throw new DerError('basicConstraints is not a SEQUENCE');
  const parts = children(der, seq);
  const first = parts[0];
  const isCa = first !== undefined && first.tag === 0x01 && first.end > first.start && der[first.start] !== 0;
  const len = parts.find((p) => p.tag === 0x02);
  return { isCa, pathLen: len ? readPathLen(der, len) : null };
}

/** A non-negative INTEGER; larger than any real path when it does not fit in 48 bits. */
function readPathLen(der: Uint8Array, n: DerNode): number {
  if (n.end === n.start) throw new DerError('empty pathLenConstraint');
  // OpenSSL marks a certificate with a negative pathLenConstraint invalid: so does this reader.
  if (der[n.start]! & 0x80) throw new DerError('negative pathLenConstraint');
  let v = 0;
  for (let i = n.start; i < n.end; i++) {
    v = v * 256 + der[i]!;
    if (v > 2 ** 48) return 2 ** 48;
  }
  return v;
}

/** ExtKeyUsageSyntax ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId (an OBJECT IDENTIFIER). */
function readExtKeyUsage(der: Uint8Array, seq: DerNode): string[] {
  if (seq.tag !== 0x30) throw new DerError('extendedKeyUsage is not a SEQUENCE');
  return children(der, seq).map((p) => {
    if (p.tag !== 0x06) throw new DerError('extendedKeyUsage holds something other than an OID');
    return ruleOid(der, p);
  });
}

/** AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }: the OID, and a PSS signature's hash. */
function readSignatureAlgorithm(der: Uint8Array, alg: DerNode): SignatureAlgorithm {
  const [id, params] = alg.tag === 0x30 ? children(der, alg) : [];
  if (id?.tag !== 0x06) throw new DerError('signatureAlgorithm has no OID');
  const oid = ruleOid(der, id);
  if (oid !== OID_RSASSA_PSS) return { oid };
  // RSASSA-PSS-params ::= SEQUENCE { hashAlgorithm [0] HashAlgorithm DEFAULT sha1, … }
  const hashWrapper = params?.tag === 0x30 ? children(der, params).find((p) => p.tag === 0xa0) : undefined;
  const hashAlg = hashWrapper ? children(der, hashWrapper)[0] : undefined;
  const hashOid = hashAlg?.tag === 0x30 ? children(der, hashAlg)[0] : undefined;
  if (hashWrapper && hashOid?.tag !== 0x06) throw new DerError('RSASSA-PSS parameters name no hash');
  return { oid, pssHash: hashOid ? ruleOid(der, hashOid) : OID_SHA1 };
}

/** SubjectPublicKeyInfo: the algorithm, and the modulus and exponent sizes of an RSA key or the named curve of an EC key. */
function readKeyInfo(der: Uint8Array, spki: DerNode): KeyInfo {
  const [alg, bits] = children(der, spki);
  const [id, params] = alg?.tag === 0x30 ? children(der, alg) : [];
  if (id?.tag !== 0x06 || bits?.tag !== 0x03) throw new DerError('malformed subjectPublicKeyInfo');
  const oid = ruleOid(der, id);
  if (oid === OID_EC_PUBLIC_KEY) return { type: 'ec', curve: params?.tag === 0x06 ? ruleOid(der, params) : '' };
  if (oid !== OID_RSA_ENCRYPTION && oid !== OID_RSASSA_PSS) return { type: 'other', oid };
  const sizes = rsaKeySizes(der, bits);
  return sizes === null ? { type: 'other', oid } : { type: 'rsa', ...sizes };
}

/** RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }, inside the key's BIT STRING; null if unreadable. */
function rsaKeySizes(der: Uint8Array, bits: DerNode): { bits: number; exponentBits: number } | null {
  try {
    if (bits.end - bits.start < 2 || der[bits.start] !== 0) return null;
    const key = readNode(der, bits.start + 1, bits.end);
    const [n, e] = key.tag === 0x30 ? children(der, key) : [];
    if (n?.tag !== 0x02 || e?.tag !== 0x02) return null;
    return { bits: integerBits(der, n), exponentBits: integerBits(der, e) };
  } catch (e) {
    if (e instanceof DerError) return null;
    throw e;
  }
}

/** Bits of an INTEGER's value, leading zero bytes skipped (0 for zero). */
function integerBits(der: Uint8Array, n: DerNode): number {
  let i = n.start;
  while (i < n.end && der[i] === 0) i++;
  if (i === n.end) return 0;
  return (n.end - i - 1) * 8 + (32 - Math.clz32(der[i]!));
}

function readKeyUsage(der: Uint8Array, bits: DerNode): KeyUsage {
  if (bits.tag !== 0x03) throw new DerError('keyUsage is not a BIT STRING');
  // First content byte is the count of unused bits; flags start at the next byte, most significant bit first.
  const b0 = bits.end - bits.start > 1 ? der[bits.start + 1]! : 0;
  return { digitalSignature: (b0 & 0x80) !== 0, keyCertSign: (b0 & 0x04) !== 0, cRLSign: (b0 & 0x02) !== 0 };
}

/**
 * The dotted form of an OID the rules compare against their lists: only a DER OID is read, every arc minimally
 * encoded and ended. oidText alone would read a trailing unfinished arc as absent (serverAuth plus a stray 0x81
 * would print as serverAuth), which OpenSSL refuses.
 */
function ruleOid(der: Uint8Array, node: DerNode): string {
  const b = bytesOf(der, node);
  if (b.length === 0 || b[b.length - 1]! & 0x80) throw new DerError('an OID with an unfinished arc');
  let run = 0;
  for (let i = 0; i < b.length; i++) {
    if (run === 0 && b[i] === 0x80) throw new DerError('an OID arc with a leading zero');
    run = b[i]! & 0x80 ? run + 1 : 0;
    if (run > 7) throw new DerError('an OID arc too large');
  }
  return oidText(b);
}

/** Dotted form of DER OID content bytes (for messages; ruleOid for what is compared). */
export function oidText(b: Uint8Array): string {
  if (b.length === 0) return '';
  const out = [Math.min(2, Math.floor(b[0]! / 40)), b[0]! - Math.min(2, Math.floor(b[0]! / 40)) * 40];
  let v = 0;
  for (let i = 1; i < b.length; i++) {
    v = v * 128 + (b[i]! & 0x7f);
    if ((b[i]! & 0x80) === 0) {
      out.push(v);
      v = 0;
    }
  }
  return out.join('.');
}
