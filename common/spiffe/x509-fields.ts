// The X.509 fields the SVID rules need (URI and DNS SANs, basicConstraints, keyUsage, critical extensions this
// code does not understand), read straight from DER — never from Node's `subjectaltname` string form.
import { type DerNode, DerError, bytesOf, children, equalBytes, readNode } from '../pki/der.js';

const OID_BASIC_CONSTRAINTS = Uint8Array.of(0x55, 0x1d, 0x13);
const OID_KEY_USAGE = Uint8Array.of(0x55, 0x1d, 0x0f);
const OID_SUBJECT_ALT_NAME = Uint8Array.of(0x55, 0x1d, 0x11);
/** Extensions whose meaning is checked here or by the path builder (EKU, key identifiers): critical is fine. */
const UNDERSTOOD = [
  OID_BASIC_CONSTRAINTS,
  OID_KEY_USAGE,
  OID_SUBJECT_ALT_NAME,
  Uint8Array.of(0x55, 0x1d, 0x25), // extKeyUsage
  Uint8Array.of(0x55, 0x1d, 0x0e), // subjectKeyIdentifier
  Uint8Array.of(0x55, 0x1d, 0x23), // authorityKeyIdentifier
];

export interface KeyUsage {
  readonly digitalSignature: boolean;
  readonly keyCertSign: boolean;
  readonly cRLSign: boolean;
}

export interface CertFields {
  readonly uriSans: readonly string[];
  readonly dnsSans: readonly string[];
  readonly isCa: boolean;
  /** Null when the certificate has no keyUsage extension. */
  readonly keyUsage: KeyUsage | null;
  /** Dotted OIDs of critical extensions not in UNDERSTOOD (RFC 5280 §4.2: the certificate must be rejected). */
  readonly unknownCritical: readonly string[];
}

/** Throws DerError on malformed input, including an extension that appears twice (RFC 5280 §4.2). */
export function readCertFields(der: Uint8Array): CertFields {
  const cert = readNode(der, 0);
  const [tbs] = children(der, cert);
  if (!tbs) throw new DerError('empty certificate');
  const tbsParts = children(der, tbs);
  // Extensions are the [3] EXPLICIT element of TBSCertificate.
  const extsWrapper = tbsParts.find((n) => n.tag === 0xa3);
  let uriSans: string[] = [];
  let dnsSans: string[] = [];
  let isCa = false;
  let keyUsage: KeyUsage | null = null;
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
      else if (equalBytes(oidBytes, OID_BASIC_CONSTRAINTS)) isCa = readIsCa(der, inner);
      else if (equalBytes(oidBytes, OID_KEY_USAGE)) keyUsage = readKeyUsage(der, inner);
      if (critical && !UNDERSTOOD.some((u) => equalBytes(u, oidBytes))) unknownCritical.push(oidText(oidBytes));
    }
  }
  return { uriSans, dnsSans, isCa, keyUsage, unknownCritical };
}

function readSans(der: Uint8Array, seq: DerNode): { uriSans: string[]; dnsSans: string[] } {
  if (seq.tag !== 0x30) throw new DerError('subjectAltName is not a SEQUENCE');
  // uniformResourceIdentifier is [6] IMPLICIT IA5String (0x86), dNSName [2] IMPLICIT IA5String (0x82).
  const names = children(der, seq);
  const text = (n: DerNode) => Buffer.from(bytesOf(der, n)).toString('latin1');
  return { uriSans: names.filter((n) => n.tag === 0x86).map(text), dnsSans: names.filter((n) => n.tag === 0x82).map(text) };
}

function readIsCa(der: Uint8Array, seq: DerNode): boolean {
  const first = children(der, seq)[0];
  return first !== undefined && first.tag === 0x01 && first.end > first.start && der[first.start] !== 0;
}

function readKeyUsage(der: Uint8Array, bits: DerNode): KeyUsage {
  if (bits.tag !== 0x03) throw new DerError('keyUsage is not a BIT STRING');
  // First content byte is the count of unused bits; flags start at the next byte, most significant bit first.
  const b0 = bits.end - bits.start > 1 ? der[bits.start + 1]! : 0;
  return { digitalSignature: (b0 & 0x80) !== 0, keyCertSign: (b0 & 0x04) !== 0, cRLSign: (b0 & 0x02) !== 0 };
}

/** Dotted form of DER OID content bytes (for messages only). */
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
