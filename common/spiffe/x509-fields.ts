// The X.509 fields the SVID rules need (URI SANs, basicConstraints, keyUsage), read straight from DER.
import { type DerNode, DerError, bytesOf, children, equalBytes, readNode } from '../pki/der.js';

const OID_BASIC_CONSTRAINTS = Uint8Array.of(0x55, 0x1d, 0x13);
const OID_KEY_USAGE = Uint8Array.of(0x55, 0x1d, 0x0f);
const OID_SUBJECT_ALT_NAME = Uint8Array.of(0x55, 0x1d, 0x11);

export interface KeyUsage {
  readonly digitalSignature: boolean;
  readonly keyCertSign: boolean;
  readonly cRLSign: boolean;
}

export interface CertFields {
  readonly uriSans: readonly string[];
  readonly isCa: boolean;
  /** Null when the certificate has no keyUsage extension. */
  readonly keyUsage: KeyUsage | null;
}

/** Throws DerError on malformed input. */
export function readCertFields(der: Uint8Array): CertFields {
  const cert = readNode(der, 0);
  const [tbs] = children(der, cert);
  if (!tbs) throw new DerError('empty certificate');
  const tbsParts = children(der, tbs);
  // Extensions are the [3] EXPLICIT element of TBSCertificate.
  const extsWrapper = tbsParts.find((n) => n.tag === 0xa3);
  let uriSans: string[] = [];
  let isCa = false;
  let keyUsage: KeyUsage | null = null;
  if (extsWrapper) {
    const [extSeq] = children(der, extsWrapper);
    for (const ext of extSeq ? children(der, extSeq) : []) {
      const parts = children(der, ext);
      const oid = parts[0];
      const value = parts[parts.length - 1];
      if (!oid || !value || oid.tag !== 0x06 || value.tag !== 0x04) throw new DerError('malformed extension');
      const oidBytes = bytesOf(der, oid);
      const inner = readNode(der, value.start, value.end);
      if (equalBytes(oidBytes, OID_SUBJECT_ALT_NAME)) uriSans = readUriSans(der, inner);
      else if (equalBytes(oidBytes, OID_BASIC_CONSTRAINTS)) isCa = readIsCa(der, inner);
      else if (equalBytes(oidBytes, OID_KEY_USAGE)) keyUsage = readKeyUsage(der, inner);
    }
  }
  return { uriSans, isCa, keyUsage };
}

function readUriSans(der: Uint8Array, seq: DerNode): string[] {
  // uniformResourceIdentifier is [6] IMPLICIT IA5String: tag 0x86.
  return children(der, seq)
    .filter((n) => n.tag === 0x86)
    .map((n) => Buffer.from(bytesOf(der, n)).toString('latin1'));
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
