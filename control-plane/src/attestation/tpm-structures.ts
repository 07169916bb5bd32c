// Bounded readers of the two TPM 2.0 structures a quote comes as (TPM 2.0 Library, Part 2): TPMS_ATTEST of type
// TPM_ST_ATTEST_QUOTE (what the TPM signed) and TPMT_SIGNATURE (the signature over it). Every length is checked
// against what is left and against the TPM's own maxima before it is used, so hostile bytes end in
// TESSERA_ERR_ATTESTATION_TPM_QUOTE_MALFORMED, never in a RangeError or a large allocation.
import { TesseraError } from '../../../common/errors.js';

/** TPM_GENERATED_VALUE: a restricted signing key signs only structures the TPM made, which start with it. */
export const TPM_GENERATED_VALUE = 0xff544347;
export const TPM_ST_ATTEST_QUOTE = 0x8018;

export type TpmHashName = 'sha1' | 'sha256' | 'sha384' | 'sha512';

/** TPM_ALG_ID of the hash algorithms, with their digest sizes. */
export const TPM_HASH_ALGS: ReadonlyMap<number, { readonly name: TpmHashName; readonly size: number }> = new Map([
  [0x0004, { name: 'sha1', size: 20 }],
  [0x000b, { name: 'sha256', size: 32 }],
  [0x000c, { name: 'sha384', size: 48 }],
  [0x000d, { name: 'sha512', size: 64 }],
]);
export const TPM_ALG_RSASSA = 0x0014;
export const TPM_ALG_RSAPSS = 0x0016;
export const TPM_ALG_ECDSA = 0x0018;

/** Largest structures accepted: a quote over every bank is a few hundred bytes, an RSA-4096 signature 518. */
export const MAX_QUOTE_BYTES = 2048;
export const MAX_SIGNATURE_BYTES = 1024;
/** sizeof(TPMU_NAME), sizeof(TPMU_HA): the largest name and digest a TPM produces (SHA-512 based). */
const MAX_NAME = 2 + 64;
const MAX_DIGEST = 64;
/** Banks a TPM can select at once (HASH_COUNT) and bytes of one PCR bitmap (64 PCRs is more than any TPM has). */
const MAX_SELECTIONS = 16;
const MAX_SELECT_BYTES = 8;
const MAX_RSA_SIGNATURE = 512;
const MAX_ECC_PARAMETER = 66;

export interface PcrSelection {
  /** TPM_ALG_ID of the bank. */
  readonly hashAlg: number;
  /** Selected PCR indices, ascending. */
  readonly pcrs: readonly number[];
}

/** A parsed TPMS_ATTEST of type quote. */
export interface TpmQuote {
  readonly qualifiedSigner: Buffer;
  /** The qualifying data the caller passed to TPM2_Quote. */
  readonly extraData: Buffer;
  readonly clock: bigint;
  readonly resetCount: number;
  readonly restartCount: number;
  readonly safe: boolean;
  readonly firmwareVersion: bigint;
  readonly pcrSelections: readonly PcrSelection[];
  /** Hash (with the signing scheme's hash algorithm) of the selected PCR values, in selection order. */
  readonly pcrDigest: Buffer;
}

export type TpmSignature =
  | { readonly alg: 'ecdsa'; readonly hash: TpmHashName; readonly r: Buffer; readonly s: Buffer }
  | { readonly alg: 'rsassa' | 'rsapss'; readonly hash: TpmHashName; readonly sig: Buffer };

/**
 * `what` is the TpmEvidence field (quote or signature): named in `reason` too, which is what the audit line carries,
 * so "1 trailing byte(s)" or "empty" says which of the two it was (audit 56a F4).
 */
function malformed(what: 'quote' | 'signature', detail: string): TesseraError {
  const reason = `${what}: ${detail}`;
  return new TesseraError('TESSERA_ERR_ATTESTATION_TPM_QUOTE_MALFORMED', reason, { reason });
}

/** A cursor that refuses to read past the end (big-endian, as the TPM marshals). */
class TpmReader {
  #pos = 0;
  constructor(
    readonly buf: Uint8Array,
    readonly what: 'quote' | 'signature',
  ) {}

  #take(n: number, field: string): number {
    if (n > this.buf.length - this.#pos) throw malformed(this.what, `truncated at ${field} (offset ${this.#pos}, needs ${n} of ${this.buf.length - this.#pos} left)`);
    const at = this.#pos;
    this.#pos += n;
    return at;
  }
  u8(field: string): number {
    return this.buf[this.#take(1, field)]!;
  }
  u16(field: string): number {
    const at = this.#take(2, field);
    return (this.buf[at]! << 8) | this.buf[at + 1]!;
  }
  u32(field: string): number {
    const at = this.#take(4, field);
    return ((this.buf[at]! << 24) >>> 0) + (this.buf[at + 1]! << 16) + (this.buf[at + 2]! << 8) + this.buf[at + 3]!;
  }
  u64(field: string): bigint {
    const hi = BigInt(this.u32(field));
    return (hi << 32n) | BigInt(this.u32(field));
  }
  bytes(n: number, field: string): Buffer {
    const at = this.#take(n, field);
    return Buffer.from(this.buf.subarray(at, at + n));
  }
  /** A TPM2B_*: a UINT16 size, then that many bytes (at most `max`). */
  sized(max: number, field: string): Buffer {
    const n = this.u16(`${field}.size`);
    if (n > max) throw malformed(this.what, `${field} is ${n} bytes, more than the ${max} a TPM produces`);
    return this.bytes(n, field);
  }
  end(): void {
    if (this.#pos !== this.buf.length) throw malformed(this.what, `${this.buf.length - this.#pos} trailing byte(s)`);
  }
}

function input(buf: Uint8Array, max: number, what: 'quote' | 'signature'): TpmReader {
  if (!(buf instanceof Uint8Array)) throw malformed(what, 'not bytes');
  if (buf.length === 0) throw malformed(what, 'empty');
  if (buf.length > max) throw malformed(what, `${buf.length} bytes, more than ${max}`);
  return new TpmReader(buf, what);
}

function hashOf(id: number, what: 'quote' | 'signature', field: string): TpmHashName {
  const h = TPM_HASH_ALGS.get(id);
  if (!h) throw malformed(what, `${field} 0x${id.toString(16).padStart(4, '0')} is not a supported hash algorithm`);
  return h.name;
}

/** Parses the TPMS_ATTEST a TPM2_Quote returned; refuses anything that is not a TPM-generated quote. */
export function parseTpmQuote(buf: Uint8Array): TpmQuote {
  const r = input(buf, MAX_QUOTE_BYTES, 'quote');
  const magic = r.u32('magic');
  if (magic !== TPM_GENERATED_VALUE) throw malformed('quote', `magic 0x${magic.toString(16)} is not TPM_GENERATED_VALUE`);
  const type = r.u16('type');
  if (type !== TPM_ST_ATTEST_QUOTE) throw malformed('quote', `type 0x${type.toString(16)} is not TPM_ST_ATTEST_QUOTE`);
  const qualifiedSigner = r.sized(MAX_NAME, 'qualifiedSigner');
  const extraData = r.sized(MAX_DIGEST, 'extraData');
  const clock = r.u64('clockInfo.clock');
  const resetCount = r.u32('clockInfo.resetCount');
  const restartCount = r.u32('clockInfo.restartCount');
  const safe = r.u8('clockInfo.safe');
  if (safe > 1) throw malformed('quote', `clockInfo.safe is ${safe}, not a TPMI_YES_NO`);
  const firmwareVersion = r.u64('firmwareVersion');
  const count = r.u32('pcrSelect.count');
  if (count > MAX_SELECTIONS) throw malformed('quote', `pcrSelect.count ${count} is more than ${MAX_SELECTIONS}`);
  const pcrSelections: PcrSelection[] = [];
  for (let i = 0; i < count; i++) {
    const hashAlg = r.u16(`pcrSelections[${i}].hash`);
    const size = r.u8(`pcrSelections[${i}].sizeofSelect`);
    if (size > MAX_SELECT_BYTES) throw malformed('quote', `pcrSelections[${i}].sizeofSelect ${size} is more than ${MAX_SELECT_BYTES}`);
    const bitmap = r.bytes(size, `pcrSelections[${i}].pcrSelect`);
    const pcrs: number[] = [];
    for (let b = 0; b < size * 8; b++) if (bitmap[b >> 3]! & (1 << (b & 7))) pcrs.push(b);
    pcrSelections.push({ hashAlg, pcrs });
  }
  const pcrDigest = r.sized(MAX_DIGEST, 'pcrDigest');
  r.end();
  return { qualifiedSigner, extraData, clock, resetCount, restartCount, safe: safe === 1, firmwareVersion, pcrSelections, pcrDigest };
}

/** Parses a TPMT_SIGNATURE: ECDSA, RSASSA-PKCS1-v1_5 or RSA-PSS with SHA-1/256/384/512 (SHA-1 is refused later). */
export function parseTpmSignature(buf: Uint8Array): TpmSignature {
  const r = input(buf, MAX_SIGNATURE_BYTES, 'signature');
  const sigAlg = r.u16('sigAlg');
  if (sigAlg !== TPM_ALG_ECDSA && sigAlg !== TPM_ALG_RSASSA && sigAlg !== TPM_ALG_RSAPSS) {
    throw malformed('signature', `sigAlg 0x${sigAlg.toString(16).padStart(4, '0')} is not ECDSA, RSASSA or RSAPSS`);
  }
  const hash = hashOf(r.u16('hash'), 'signature', 'hash');
  const out: TpmSignature =
    sigAlg === TPM_ALG_ECDSA
      ? { alg: 'ecdsa', hash, r: r.sized(MAX_ECC_PARAMETER, 'signatureR'), s: r.sized(MAX_ECC_PARAMETER, 'signatureS') }
      : { alg: sigAlg === TPM_ALG_RSASSA ? 'rsassa' : 'rsapss', hash, sig: r.sized(MAX_RSA_SIGNATURE, 'sig') };
  r.end();
  return out;
}
