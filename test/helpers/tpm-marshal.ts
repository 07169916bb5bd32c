// Marshals the TPM 2.0 structures of a quote (TPMS_ATTEST of type quote, TPMT_SIGNATURE) the way a TPM does, and
// signs them with software keys: for unit tests of the control plane's parser and verifier without a TPM (the
// integration tests use a real software TPM, test/helpers/swtpm.ts).
import { type KeyObject, createHash, sign } from 'node:crypto';

export interface QuoteFields {
  readonly magic?: number;
  readonly type?: number;
  readonly qualifiedSigner?: Buffer;
  readonly extraData: Buffer;
  /** bank hash id → selected PCR indices. */
  readonly selections?: readonly { readonly hashAlg: number; readonly pcrs: readonly number[]; readonly sizeofSelect?: number }[];
  readonly pcrDigest: Buffer;
}

const u16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const tpm2b = (b: Buffer) => Buffer.concat([u16(b.length), b]);

export function marshalQuote(f: QuoteFields): Buffer {
  const sels = f.selections ?? [{ hashAlg: 0x000b, pcrs: [0, 7] }];
  const selBytes = sels.map((s) => {
    const size = s.sizeofSelect ?? 3;
    const bitmap = Buffer.alloc(size);
    for (const p of s.pcrs) bitmap[p >> 3]! |= 1 << (p & 7);
    return Buffer.concat([u16(s.hashAlg), Buffer.from([size]), bitmap]);
  });
  return Buffer.concat([
    u32(f.magic ?? 0xff544347),
    u16(f.type ?? 0x8018),
    tpm2b(f.qualifiedSigner ?? Buffer.concat([u16(0x000b), createHash('sha256').update('ak').digest()])),
    tpm2b(f.extraData),
    Buffer.alloc(8, 1), // clock
    u32(1), // resetCount
    u32(0), // restartCount
    Buffer.from([1]), // safe
    Buffer.alloc(8, 2), // firmwareVersion
    u32(sels.length),
    ...selBytes,
    tpm2b(f.pcrDigest),
  ]);
}

/** TPMT_SIGNATURE of `data` by `key`: ECDSA (r, s as fixed-width integers) or RSASSA, SHA-256. */
export function signLikeTpm(data: Buffer, key: KeyObject): Buffer {
  if (key.asymmetricKeyType === 'ec') {
    const rs = sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' });
    const half = rs.length / 2;
    return Buffer.concat([u16(0x0018), u16(0x000b), tpm2b(rs.subarray(0, half)), tpm2b(rs.subarray(half))]);
  }
  return Buffer.concat([u16(0x0014), u16(0x000b), tpm2b(sign('sha256', data, key))]);
}
