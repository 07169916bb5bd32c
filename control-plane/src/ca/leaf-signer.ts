// Builds and signs X.509-SVID leaves from a fixed DER template with node:crypto: one URI SAN (the SPIFFE ID),
// cA=false, keyUsage digitalSignature (+keyEncipherment for RSA), serverAuth+clientAuth, SKI/AKI.
import { type KeyObject, type X509Certificate, createHash, randomBytes, sign } from 'node:crypto';
import { DerError, bytesOf, children, readNode } from '../../../common/pki/der.js';
import { decodeOid } from '../issuance/csr-reader.js';
import { bitString, contextTag, extension, octetString, oid, sequence, set, smallInteger, time, tlv, unsignedInteger } from '../../../common/pki/der-writer.js';

/** An intermediate ready to sign: its private key plus the bytes every leaf copies from it. */
export interface LeafIssuer {
  readonly cert: X509Certificate;
  readonly privateKey: KeyObject;
  /** The intermediate's subject Name, DER, copied byte for byte as the leaf's issuer. */
  readonly subjectDer: Buffer;
  /** The intermediate's subjectKeyIdentifier, used as the leaf's authorityKeyIdentifier. */
  readonly keyId: Buffer;
}

export interface LeafRequest {
  readonly spiffeId: string;
  /** SubjectPublicKeyInfo DER of the key the SVID is for. */
  readonly spkiDer: Buffer;
  readonly keyAlgorithm: 'ec-p256' | 'rsa-2048';
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
}

export interface SignedLeaf {
  readonly der: Buffer;
  /** Lower-case hex, as node:crypto prints serials (but lower case). */
  readonly serialHex: string;
}

const ECDSA_WITH_SHA256 = sequence(oid('1.2.840.10045.4.3.2'));
const OID_SKI = '2.5.29.14';
// O=Tessera: the subject carries nothing; the identity is the URI SAN.
const LEAF_SUBJECT = sequence(set(sequence(oid('2.5.4.10'), tlv(0x0c, Buffer.from('Tessera')))));
const BASIC_CONSTRAINTS_LEAF = extension('2.5.29.19', true, sequence());
const KEY_USAGE_EC = extension('2.5.29.15', true, Buffer.from([0x03, 0x02, 0x07, 0x80]));
const KEY_USAGE_RSA = extension('2.5.29.15', true, Buffer.from([0x03, 0x02, 0x05, 0xa0]));
const EXT_KEY_USAGE = extension('2.5.29.37', false, sequence(oid('1.3.6.1.5.5.7.3.1'), oid('1.3.6.1.5.5.7.3.2')));

/** Certificate → TBSCertificate fields, with the offset each field's header starts at. */
function tbsFields(der: Uint8Array) {
  const cert = readNode(der, 0);
  const tbs = children(der, cert)[0]!;
  const fields = children(der, tbs);
  const starts = fields.map((_, i) => (i === 0 ? tbs.start : fields[i - 1]!.end));
  const hasVersion = fields[0]!.tag === 0xa0;
  return { fields, starts, base: hasVersion ? 1 : 0 };
}

/** Extracts what signing needs from an intermediate certificate and its key. */
export function leafIssuer(cert: X509Certificate, privateKey: KeyObject): LeafIssuer {
  const der = cert.raw;
  const { fields, starts, base } = tbsFields(der);
  const subject = fields[base + 4]!;
  const subjectDer = Buffer.from(der.subarray(starts[base + 4]!, subject.end));
  let keyId: Buffer | undefined;
  const extsWrapper = fields.find((f) => f.tag === 0xa3);
  if (extsWrapper) {
    for (const ext of children(der, children(der, extsWrapper)[0]!)) {
      const parts = children(der, ext);
      if (decodeOid(bytesOf(der, parts[0]!)) !== OID_SKI) continue;
      const inner = bytesOf(der, parts[parts.length - 1]!);
      keyId = Buffer.from(bytesOf(inner, readNode(inner, 0)));
    }
  }
  if (!keyId) throw new DerError('the intermediate has no subjectKeyIdentifier');
  return { cert, privateKey, subjectDer, keyId };
}

/** RFC 5280 method 1: SHA-1 of the subjectPublicKey BIT STRING contents. */
export function keyIdentifier(spkiDer: Uint8Array): Buffer {
  const spki = readNode(spkiDer, 0);
  const bits = children(spkiDer, spki)[1]!;
  return createHash('sha1').update(bytesOf(spkiDer, bits).subarray(1)).digest();
}

/** A random positive 128-bit serial (first byte 0x01..0x7f, so DER needs no padding). */
function randomSerial(): Buffer {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b;
}

export function signLeaf(issuer: LeafIssuer, req: LeafRequest): SignedLeaf {
  const serial = randomSerial();
  const san = sequence(contextTag(6, false, Buffer.from(req.spiffeId, 'ascii')));
  const extensions = sequence(
    BASIC_CONSTRAINTS_LEAF,
    req.keyAlgorithm === 'rsa-2048' ? KEY_USAGE_RSA : KEY_USAGE_EC,
    EXT_KEY_USAGE,
    extension('2.5.29.17', false, san),
    extension(OID_SKI, false, octetString(keyIdentifier(req.spkiDer))),
    extension('2.5.29.35', false, sequence(contextTag(0, false, issuer.keyId))),
  );
  const tbs = sequence(
    contextTag(0, true, smallInteger(2)),
    unsignedInteger(serial),
    ECDSA_WITH_SHA256,
    issuer.subjectDer,
    sequence(time(req.notBeforeMs), time(req.notAfterMs)),
    LEAF_SUBJECT,
    req.spkiDer,
    contextTag(3, true, extensions),
  );
  const signature = sign('sha256', tbs, issuer.privateKey);
  return { der: sequence(tbs, ECDSA_WITH_SHA256, bitString(signature)), serialHex: serial.toString('hex') };
}
