// The signing scheme of the attestation key, read from its public area (TPM2B_PUBLIC as `tpm2_readpublic -o`
// writes it): a restricted AK is created with one scheme and hash (`tpm2_createak -s rsapss -g sha256`), and
// TPM2_Quote refuses any other ("unsupported or incompatible scheme"), while tpm2_quote asks for RSASSA and
// SHA-256 unless told. Only what the control plane verifies is returned: RSASSA, RSA-PSS or ECDSA with SHA-256/384/512.
import { TesseraError } from '../../../../common/errors.js';

export type QuoteScheme = 'rsassa' | 'rsapss' | 'ecdsa';
export type QuoteHash = 'sha256' | 'sha384' | 'sha512';

/** The key's own scheme, or (`hash` null) none: a key without one signs with any scheme of its type. */
export interface AkScheme {
  readonly scheme: QuoteScheme;
  /** Null when the key has no scheme of its own (TPM_ALG_NULL): the caller picks the hash. */
  readonly hash: QuoteHash | null;
}

const TPM_ALG_RSA = 0x0001;
const TPM_ALG_ECC = 0x0023;
const TPM_ALG_NULL = 0x0010;
const TPMA_OBJECT_SIGN = 0x0004_0000;
const SCHEMES: ReadonlyMap<number, QuoteScheme> = new Map([
  [0x0014, 'rsassa'],
  [0x0016, 'rsapss'],
  [0x0018, 'ecdsa'],
]);
/** Names of schemes a signing key may have that the control plane does not verify, for the message. */
const OTHER_SCHEMES: ReadonlyMap<number, string> = new Map([
  [0x001a, 'ecdaa'],
  [0x001b, 'sm2'],
  [0x001c, 'ecschnorr'],
]);
const HASHES: ReadonlyMap<number, QuoteHash> = new Map([
  [0x000b, 'sha256'],
  [0x000c, 'sha384'],
  [0x000d, 'sha512'],
]);
const OTHER_HASHES: ReadonlyMap<number, string> = new Map([
  [0x0004, 'sha1'],
  [0x0012, 'sm3_256'],
]);

const hex = (n: number) => `0x${n.toString(16).padStart(4, '0')}`;

function unusable(ak: string, what: string): TesseraError {
  return new TesseraError('TESSERA_ERR_IDENTITY_TPM_QUOTE_FAILED', `the attestation key ${ak} ${what}`);
}

/**
 * Reads TPM2B_PUBLIC: size, then TPMT_PUBLIC { type, nameAlg, objectAttributes, authPolicy (TPM2B), parameters },
 * whose RSA and ECC parameters both begin with symmetric (TPMT_SYM_DEF_OBJECT) and scheme { scheme, hashAlg }.
 * Throws TESSERA_ERR_IDENTITY_TPM_QUOTE_FAILED for a key that cannot make a quote the control plane accepts; `ak`
 * names the key in the message.
 */
export function akScheme(tpm2bPublic: Uint8Array, ak: string): AkScheme {
  const b = Buffer.from(tpm2bPublic.buffer, tpm2bPublic.byteOffset, tpm2bPublic.byteLength);
  let at = 0;
  const u16 = () => {
    if (at + 2 > b.length) throw unusable(ak, `has a truncated public area (${b.length} bytes)`);
    at += 2;
    return b.readUInt16BE(at - 2);
  };
  const size = u16();
  if (size !== b.length - 2) throw unusable(ak, `has a public area that is not one TPM2B_PUBLIC (${size} + 2 bytes declared, ${b.length} read)`);
  const type = u16();
  u16(); // nameAlg
  const attributes = (u16() << 16) | u16();
  const policySize = u16(); // authPolicy: skipped (`at += u16()` would add to the offset read before the call)
  at += policySize;
  if (type !== TPM_ALG_RSA && type !== TPM_ALG_ECC) throw unusable(ak, `is not an RSA or ECC key (type ${hex(type)})`);
  if ((attributes & TPMA_OBJECT_SIGN) === 0) throw unusable(ak, 'is not a signing key (an endorsement or storage key?)');
  if (u16() !== TPM_ALG_NULL) at += 4; // symmetric keyBits and mode: a signing key has none
  const scheme = u16();
  if (scheme === TPM_ALG_NULL) return { scheme: type === TPM_ALG_RSA ? 'rsassa' : 'ecdsa', hash: null };
  const name = SCHEMES.get(scheme);
  if (!name) throw unusable(ak, `signs with ${OTHER_SCHEMES.get(scheme) ?? hex(scheme)}, which the control plane does not verify (rsassa, rsapss, ecdsa)`);
  const hashAlg = u16();
  const hash = HASHES.get(hashAlg);
  if (!hash) throw unusable(ak, `signs with ${OTHER_HASHES.get(hashAlg) ?? hex(hashAlg)}, which the control plane does not accept (sha256, sha384, sha512)`);
  return { scheme: name, hash };
}
