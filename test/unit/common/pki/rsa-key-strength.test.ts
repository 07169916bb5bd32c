// RSA public keys whose private half anyone can compute are refused, each by the rule it breaks; real keys pass.
import { checkPrimeSync, createPublicKey, generateKeyPairSync, generatePrimeSync, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { ERROR_CATALOGUE } from '../../../../common/errors.js';
import { RSA_MAX_BITS, RSA_MIN_BITS, RSA_SIZES, rsaKeyWeakness } from '../../../../common/pki/rsa-key-strength.js';

const b64u = (x: bigint): string => {
  const hex = x.toString(16);
  return Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex').toString('base64url');
};
const rsaKey = (n: bigint, e: bigint): KeyObject => createPublicKey({ key: { kty: 'RSA', n: b64u(n), e: b64u(e) }, format: 'jwk' });
const prime = (bits: number): bigint => generatePrimeSync(bits, { bigint: true });
/** Two 1024-bit primes whose product has the full 2048 bits. */
function modulus2048(): bigint {
  for (;;) {
    const n = prime(1024) * prime(1024);
    if (n.toString(2).length === 2048) return n;
  }
}
/** A 1024-bit prime whose square has the full 2048 bits (so do its products with slightly larger primes). */
function bigPrime1024(): bigint {
  for (;;) {
    const p = prime(1024);
    if ((p * p).toString(2).length === 2048) return p;
  }
}
function nextPrime(from: bigint): bigint {
  let p = from % 2n === 0n ? from + 1n : from;
  while (!checkPrimeSync(p)) p += 2n;
  return p;
}

describe('rsaKeyWeakness', () => {
  test('real RSA keys of 2048 and 3072 bits and EC keys pass', () => {
    for (const modulusLength of [2048, 3072]) expect(rsaKeyWeakness(generateKeyPairSync('rsa', { modulusLength }).publicKey)).toBeNull();
    expect(rsaKeyWeakness(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey)).toBeNull();
  });

  // The upper bound is Go's (crypto/rsa refuses e > 2^31-1), shared with the CSR reader and every path's keys: a
  // 256-bit exponent made each signature check ~15 times dearer, a 3,070-bit one ~200 times (audit 56a F2).
  test('public exponents that make signing trivial or are outside 65537..2^31-1 are refused', () => {
    const n = modulus2048();
    for (const e of [1n, 3n, 17n, 65535n, 65538n, (1n << 31n) + 1n, (1n << 255n) + 1n, 1n << 256n, (1n << 257n) + 1n]) expect(rsaKeyWeakness(rsaKey(n, e)), `e=${e}`).toMatch(/exponent/);
    expect(rsaKeyWeakness(rsaKey(n, (1n << 255n) + 1n))).toBe('a public exponent of 256 bits (at most 2^31-1)');
    expect(rsaKeyWeakness(rsaKey(n, 65537n))).toBeNull();
    expect(rsaKeyWeakness(rsaKey(n, (1n << 31n) - 1n))).toBeNull();
  });

  test('a prime modulus (d = e^-1 mod n-1 is public) is refused', () => {
    expect(rsaKeyWeakness(rsaKey(prime(2048), 65537n))).toBe('a prime modulus');
  });

  test('moduli with a small factor are refused, whatever the factor', () => {
    const q = prime(2048);
    for (const f of [2n, 3n, 5n, 7n, 743n, 751n]) expect(rsaKeyWeakness(rsaKey(f * q, 65537n)), `factor ${f}`).toBe(`a modulus with the small factor ${f}`);
    expect(rsaKeyWeakness(rsaKey(757n * q, 65537n)), 'the first prime past the bound').toBeNull();
  });

  test('two primes too close to each other are found by Fermat and refused', () => {
    const p = bigPrime1024();
    for (const gap of [2n, 1000n, 1n << 40n]) expect(rsaKeyWeakness(rsaKey(p * nextPrime(p + gap), 65537n)), `gap ${gap}`).toMatch(/Fermat/);
  });

  test('a square and a cube of a prime are refused', () => {
    expect(rsaKeyWeakness(rsaKey(bigPrime1024() ** 2n, 65537n))).toMatch(/Fermat/);
    const p = prime(700);
    expect(rsaKeyWeakness(rsaKey(p ** 3n, 65537n))).toBe('a modulus that is a power of a prime');
    expect(rsaKeyWeakness(rsaKey(prime(300) ** 7n, 65537n))).toBe('a modulus that is a power of a prime');
    expect(rsaKeyWeakness(rsaKey(prime(240) ** 9n, 65537n)), 'a ninth power is a cube').toBe('a modulus that is a power of a prime');
  });

  test('moduli outside 2048..4096 bits are refused', () => {
    expect(rsaKeyWeakness(rsaKey(prime(1024) * prime(1000), 65537n))).toMatch(/-bit modulus/);
    expect(rsaKeyWeakness(rsaKey((1n << 4200n) + 1n, 65537n))).toBe('a 4201-bit modulus (allowed: 2048 to 4096)');
  });
});

describe('the accepted RSA sizes', () => {
  test('the catalogue, errors.md, the proto and control-plane.md state the one range the CSR check enforces (audit 55c F4)', () => {
    const text = (path: string) => readFileSync(new URL(`../../../../${path}`, import.meta.url), 'utf8');
    const unsupported = ERROR_CATALOGUE.TESSERA_ERR_PKI_UNSUPPORTED_KEY.message;
    expect(unsupported).toContain(RSA_SIZES);
    // The size is that code's alone: the strength rules' text names no range.
    expect(ERROR_CATALOGUE.TESSERA_ERR_PKI_WEAK_KEY.message).not.toMatch(/2048|4096/);
    expect(text('docs/errors.md')).toContain(`| \`TESSERA_ERR_PKI_UNSUPPORTED_KEY\` | \`INVALID_ARGUMENT\` | 400 | ${unsupported} |`);
    expect(text('proto/tessera/identity/v1/identity.proto').replace(/\s*\/\/\s*/g, ' ')).toContain(`(ECDSA P-256, or ${RSA_SIZES};`);
    expect(text('docs/control-plane.md').replace(/\s+/g, ' ')).toContain(`ECDSA P-256 or RSA ${RSA_MIN_BITS}–${RSA_MAX_BITS}`);
  });
});
