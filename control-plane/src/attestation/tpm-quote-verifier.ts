// The checks of one parsed TPM quote that need no state: its signature by the attestation key (ECDSA P-256/P-384 —
// the curves the AK certificate rule allows, tpm-ak-chain.ts —, RSASSA-PKCS1-v1_5 or RSA-PSS, SHA-256/384/512,
// verified by node:crypto) and its PCR selection and digest against
// the configured policy. Each failure is a coded TesseraError naming what differed.
import { type KeyObject, constants, createHash, verify } from 'node:crypto';
import { TesseraError } from '../../../common/errors.js';
import { TPM_HASH_ALGS, type TpmHashName, type TpmQuote, type TpmSignature } from './tpm-structures.js';

/** PCR values a quote must match: one bank, and the exact value of each selected PCR. */
export interface PcrPolicy {
  readonly bank: TpmHashName;
  /** PCR index → expected value (the bank's digest size). */
  readonly pcrs: ReadonlyMap<number, Buffer>;
}

/** Coordinate size of the curves an AK may use: the AK certificate's key rule (keyWeakness) admits no other. */
const CURVE_BYTES: Readonly<Record<string, number>> = { prime256v1: 32, secp384r1: 48 };

function badSignature(reason: string): TesseraError {
  return new TesseraError('TESSERA_ERR_ATTESTATION_TPM_BAD_SIGNATURE', undefined, { reason });
}

/** An ECDSA integer as a fixed-width big-endian field (r || s is what node:crypto's ieee-p1363 form reads). */
function fixed(n: Buffer, size: number): Buffer | null {
  let v = n;
  while (v.length > size && v[0] === 0) v = v.subarray(1);
  if (v.length > size) return null;
  return Buffer.concat([Buffer.alloc(size - v.length), v]);
}

/** Throws TESSERA_ERR_ATTESTATION_TPM_BAD_SIGNATURE unless `sig` is the AK's signature over `quoteBytes`. */
export function verifyTpmSignature(quoteBytes: Uint8Array, sig: TpmSignature, akKey: KeyObject): void {
  if (sig.hash === 'sha1') throw badSignature('SHA-1 signatures are not accepted');
  const type = akKey.asymmetricKeyType;
  let ok = false;
  try {
    if (sig.alg === 'ecdsa') {
      if (type !== 'ec') throw badSignature(`an ECDSA signature, but the AK certificate holds a ${type} key`);
      const size = CURVE_BYTES[akKey.asymmetricKeyDetails?.namedCurve ?? ''];
      if (!size) throw badSignature(`the AK's curve ${akKey.asymmetricKeyDetails?.namedCurve} is not P-256 or P-384`);
      const r = fixed(sig.r, size);
      const s = fixed(sig.s, size);
      ok = r !== null && s !== null && verify(sig.hash, quoteBytes, { key: akKey, dsaEncoding: 'ieee-p1363' }, Buffer.concat([r, s]));
    } else {
      if (type !== 'rsa') throw badSignature(`an RSA signature, but the AK certificate holds a ${type} key`);
      const padding =
        sig.alg === 'rsassa' ? { padding: constants.RSA_PKCS1_PADDING } : { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO };
      ok = verify(sig.hash, quoteBytes, { key: akKey, ...padding }, sig.sig);
    }
  } catch (e) {
    if (e instanceof TesseraError) throw e;
    // node:crypto throws on some malformed signatures (a wrong length for the key): a failed verification.
    ok = false;
  }
  if (!ok) throw badSignature('the signature does not verify with the AK certificate\'s key');
}

const hashId = (name: TpmHashName): number => [...TPM_HASH_ALGS].find(([, h]) => h.name === name)![0];
const describe = (bank: string, pcrs: readonly number[]) => `${bank}:${pcrs.join(',')}`;

/**
 * Throws TESSERA_ERR_ATTESTATION_TPM_PCR_MISMATCH unless the quote selects exactly the policy's PCRs of its bank
 * and its digest (with the signature's hash, as TPM2_Quote computes it) is that of the policy's values.
 */
export function checkPcrPolicy(quote: TpmQuote, digestHash: TpmHashName, policy: PcrPolicy): void {
  const wanted = [...policy.pcrs.keys()].sort((a, b) => a - b);
  const selected = quote.pcrSelections.filter((s) => s.pcrs.length > 0);
  const sel = selected[0];
  const same = selected.length === 1 && sel!.hashAlg === hashId(policy.bank) && sel!.pcrs.length === wanted.length && sel!.pcrs.every((p, i) => p === wanted[i]);
  if (!same) {
    const got = selected.map((s) => describe(TPM_HASH_ALGS.get(s.hashAlg)?.name ?? `0x${s.hashAlg.toString(16)}`, s.pcrs)).join(' ') || 'no PCR';
    throw new TesseraError('TESSERA_ERR_ATTESTATION_TPM_PCR_MISMATCH', undefined, { reason: `the quote selects ${got}; the policy needs ${describe(policy.bank, wanted)}` });
  }
  const h = createHash(digestHash);
  for (const i of wanted) h.update(policy.pcrs.get(i)!);
  if (!h.digest().equals(quote.pcrDigest)) {
    throw new TesseraError('TESSERA_ERR_ATTESTATION_TPM_PCR_MISMATCH', undefined, { reason: `the values of ${describe(policy.bank, wanted)} differ from the policy` });
  }
}
