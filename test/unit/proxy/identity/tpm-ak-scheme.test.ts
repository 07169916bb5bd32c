// akScheme: the AK's signing scheme read from its TPM2B_PUBLIC, so tpm2_quote is told the scheme the key was made
// with (an RSA-PSS AK refuses tpm2_quote's RSASSA default: audit 56a F3). Public areas are marshalled here the way
// a TPM does; test/integration/tpm-ak-schemes.test.ts reads real ones from swtpm.
import { describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { akScheme } from '../../../../proxy/src/identity/tpm/tpm-ak-scheme.js';

const u16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const tpm2b = (b: Buffer) => Buffer.concat([u16(b.length), b]);

/** fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign, as tpm2_createak makes an AK. */
const AK_ATTRIBUTES = 0x0005_0072;
/** fixedtpm|fixedparent|sensitivedataorigin|adminwithpolicy|restricted|decrypt: an endorsement key. */
const EK_ATTRIBUTES = 0x0003_00b2;

interface Area {
  readonly type: number;
  readonly attributes?: number;
  /** TPMT_SYM_DEF_OBJECT: algorithm, and keyBits + mode unless NULL. */
  readonly symmetric?: readonly number[];
  /** scheme, and its hashAlg unless NULL. */
  readonly scheme: readonly number[];
}

function publicArea(a: Area): Buffer {
  const rest = a.type === 0x0001 ? Buffer.concat([u16(2048), u32(0), tpm2b(Buffer.alloc(256, 7))]) : Buffer.concat([u16(0x0003), u16(0x0010), tpm2b(Buffer.alloc(32, 1)), tpm2b(Buffer.alloc(32, 2))]);
  const area = Buffer.concat([u16(a.type), u16(0x000b), u32(a.attributes ?? AK_ATTRIBUTES), tpm2b(Buffer.alloc(0)), ...(a.symmetric ?? [0x0010]).map(u16), ...a.scheme.map(u16), rest]);
  return tpm2b(area);
}

function refusal(bytes: Uint8Array): string {
  try {
    return JSON.stringify(akScheme(bytes, '0x81010002'));
  } catch (e) {
    if (!isTesseraError(e)) throw e;
    return `${e.code}: ${e.message}`;
  }
}

describe('akScheme', () => {
  test('the schemes the control plane verifies, with the hash the key fixes', () => {
    expect(akScheme(publicArea({ type: 0x0001, scheme: [0x0016, 0x000b] }), 'ak')).toEqual({ scheme: 'rsapss', hash: 'sha256' });
    expect(akScheme(publicArea({ type: 0x0001, scheme: [0x0014, 0x000d] }), 'ak')).toEqual({ scheme: 'rsassa', hash: 'sha512' });
    expect(akScheme(publicArea({ type: 0x0023, scheme: [0x0018, 0x000c] }), 'ak')).toEqual({ scheme: 'ecdsa', hash: 'sha384' });
  });

  test('a key without a scheme of its own (an unrestricted signing key) leaves the hash to the caller', () => {
    expect(akScheme(publicArea({ type: 0x0023, attributes: 0x0004_0072, scheme: [0x0010] }), 'ak')).toEqual({ scheme: 'ecdsa', hash: null });
    expect(akScheme(publicArea({ type: 0x0001, attributes: 0x0004_0072, scheme: [0x0010] }), 'ak')).toEqual({ scheme: 'rsassa', hash: null });
  });

  test('keys that cannot make a quote the control plane accepts are refused, naming the key and why', () => {
    const code = 'TESSERA_ERR_IDENTITY_TPM_QUOTE_FAILED: the attestation key 0x81010002';
    // An endorsement key at the handle: a restricted decryption key, with a symmetric definition (AES-128-CFB).
    expect(refusal(publicArea({ type: 0x0023, attributes: EK_ATTRIBUTES, symmetric: [0x0006, 128, 0x0043], scheme: [0x0010] }))).toBe(`${code} is not a signing key (an endorsement or storage key?)`);
    expect(refusal(publicArea({ type: 0x0008, scheme: [0x0010] }))).toBe(`${code} is not an RSA or ECC key (type 0x0008)`);
    expect(refusal(publicArea({ type: 0x0023, scheme: [0x001c, 0x000b] }))).toBe(`${code} signs with ecschnorr, which the control plane does not verify (rsassa, rsapss, ecdsa)`);
    expect(refusal(publicArea({ type: 0x0023, scheme: [0x001a, 0x000b] }))).toMatch(/signs with ecdaa/);
    expect(refusal(publicArea({ type: 0x0001, scheme: [0x0014, 0x0004] }))).toBe(`${code} signs with sha1, which the control plane does not accept (sha256, sha384, sha512)`);
  });

  test('a truncated or oversized public area is refused, never read past its end', () => {
    const good = publicArea({ type: 0x0001, scheme: [0x0016, 0x000b] });
    expect(refusal(good.subarray(0, 1))).toMatch(/has a truncated public area \(1 bytes\)/);
    expect(refusal(Buffer.concat([good, Buffer.alloc(1)]))).toMatch(/is not one TPM2B_PUBLIC/);
    // A size that claims only the first fields: the scheme lies past it (16 bytes reach the hash).
    const cut = Buffer.concat([u16(10), good.subarray(2, 12)]);
    expect(refusal(cut)).toMatch(/truncated/);
    for (let n = 0; n < 16; n++) expect(refusal(Buffer.concat([u16(n), good.subarray(2, 2 + n)]))).toMatch(/TESSERA_ERR_IDENTITY_TPM_QUOTE_FAILED/);
  });
});
