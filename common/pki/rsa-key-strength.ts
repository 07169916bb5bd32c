// What makes an RSA public key unfit to certify, beyond its size: a key whose private half anyone can compute
// from the public one is not a credential. The rules are the CA/Browser Forum Baseline Requirements' (6.1.6:
// an odd exponent of at least 2^16+1, and a modulus that is odd, not a prime power and has no factor below 752) with
// the exponent capped at 2^31-1 (RSA_MAX_EXPONENT_BITS, below), plus Fermat's method for moduli whose two primes are
// too close, as Let's Encrypt's key checks do. Bounded whatever the key: one Miller-Rabin round in JavaScript dominates, ~12 ms
// of CPU for a 2048-bit modulus and ~60 ms for 4096 (OpenSSL's own prime check runs 64 to 128 rounds on a prime:
// 1.8 to 2.4 s a key). Still too much for an event loop that serves the mesh: the control plane runs these rules on
// a worker thread, once per distinct key (rsa-key-verdicts.ts; control-plane/src/issuance/rsa-key-worker.ts).
import type { KeyObject } from 'node:crypto';

/** RSA moduli accepted, in bits: below, too weak; above, these checks and every peer's signature checks cost too much. */
export const RSA_MIN_BITS = 2048;
export const RSA_MAX_BITS = 4096;
/** The accepted sizes as messages and docs say them. */
export const RSA_SIZES = `RSA of ${RSA_MIN_BITS} to ${RSA_MAX_BITS} bits`;
/**
 * The largest public exponent taken anywhere a key is read (a CSR, a bundle, every certificate of a path), in bits:
 * 2^31-1, as Go's crypto/rsa (which refuses larger ones); real keys use 65537. A signature check costs with the
 * exponent's bits: ~9 ms of CPU for a 3,070-bit one on a 3072-bit modulus, ~0.7 ms for 256 bits, against ~0.05 ms for
 * 65537 — so this is judged before any signature is checked with the key (audit 56a F2).
 */
export const RSA_MAX_EXPONENT_BITS = 31;
const MIN_EXPONENT = 65537n;
/** Factors below this are tried by division (Baseline Requirements 6.1.6). */
const SMALL_FACTOR_BOUND = 752;
/** Fermat's method finds p and q at once when they differ by less than about 2^(bits/4) times this. */
const FERMAT_ROUNDS = 100;

const SMALL_PRIMES = primesBelow(SMALL_FACTOR_BOUND);

/** Why this RSA public key must not be certified, or null when it passes. Non-RSA keys are not judged here. */
export function rsaKeyWeakness(key: KeyObject): string | null {
  if (key.asymmetricKeyType !== 'rsa') return null;
  const jwk = key.export({ format: 'jwk' });
  if (typeof jwk.n !== 'string' || typeof jwk.e !== 'string') return 'the key has no modulus or exponent';
  const n = bigIntOf(jwk.n);
  const e = bigIntOf(jwk.e);
  const bits = n.toString(2).length;
  const size = rsaSizeWeakness(bits);
  if (size) return size;
  const large = rsaExponentWeakness(bitLength(e));
  if (large) return large;
  if (e % 2n === 0n || e < MIN_EXPONENT) return 'a public exponent that is even or outside 65537 to 2^31-1';
  for (const p of SMALL_PRIMES) if (n % p === 0n) return `a modulus with the small factor ${p}`;
  // A prime modulus has a private exponent anyone can compute (d = e^-1 mod n-1). One round is enough to refuse:
  // a prime always passes it; a composite that passes too (a crafted strong pseudoprime) is refused, which is safe.
  if (strongProbablePrimeBase2(n)) return 'a prime modulus';
  if (fermatFactor(n)) return 'a modulus whose two factors are too close (Fermat)';
  if (perfectPower(n, bits)) return 'a modulus that is a power of a prime';
  return null;
}

/** Why an RSA modulus of `bits` bits is not accepted, or null: free to ask (KeyObject.asymmetricKeyDetails.modulusLength). */
export function rsaSizeWeakness(bits: number): string | null {
  return bits < RSA_MIN_BITS || bits > RSA_MAX_BITS ? `a ${bits}-bit modulus (allowed: ${RSA_MIN_BITS} to ${RSA_MAX_BITS})` : null;
}

/** Why a public exponent of `bits` bits is not accepted, or null: free to ask, so asked before any signature check. */
export function rsaExponentWeakness(bits: number): string | null {
  return bits > RSA_MAX_EXPONENT_BITS ? `a public exponent of ${bits} bits (at most 2^31-1)` : null;
}

/** Bits of a non-negative integer (0 for 0), as rsaExponentWeakness takes them. */
export function bitLength(v: bigint): number {
  return v === 0n ? 0 : v.toString(2).length;
}

/** Miller-Rabin with base 2: false proves n composite. */
function strongProbablePrimeBase2(n: bigint): boolean {
  let d = n - 1n;
  let s = 0;
  while ((d & 1n) === 0n) {
    d >>= 1n;
    s++;
  }
  let x = powerOfTwo(d, n);
  if (x === 1n || x === n - 1n) return true;
  for (let i = 1; i < s; i++) {
    x = (x * x) % n;
    if (x === n - 1n) return true;
  }
  return false;
}

/** 2^e mod m, left to right: a multiplication by 2 is a shift and one subtraction, so only the squarings cost (half
 * the time of a general square-and-multiply). */
function powerOfTwo(e: bigint, m: bigint): bigint {
  let r = 1n;
  for (const bit of e.toString(2)) {
    r = (r * r) % m;
    if (bit === '1') {
      r <<= 1n;
      if (r >= m) r -= m;
    }
  }
  return r;
}

/** Whether n = a² - b² for a within FERMAT_ROUNDS of ⌈√n⌉, i.e. n = (a-b)(a+b) with close factors. */
function fermatFactor(n: bigint): boolean {
  let a = isqrt(n);
  if (a * a < n) a += 1n;
  for (let i = 0; i < FERMAT_ROUNDS; i++, a += 1n) {
    const b2 = a * a - n;
    const b = isqrt(b2);
    if (b * b === b2) return true;
  }
  return false;
}

/**
 * Whether n = m^k for some k ≥ 2 (a product of two distinct primes never is). Only prime k need trying (m^(ab) is
 * (m^a)^b), and m ≥ 752 here (smaller factors were refused), so k < bits / 9.
 */
function perfectPower(n: bigint, bits: number): boolean {
  for (const k of SMALL_PRIMES) {
    if (k > BigInt(Math.ceil(bits / 9))) return false;
    const r = iroot(n, k, rootAbove(n, bits, k));
    if (r ** k === n) return true;
  }
  return false;
}

function isqrt(n: bigint): bigint {
  return n < 2n ? n : iroot(n, 2n, 1n << (BigInt(n.toString(2).length) / 2n + 1n));
}

/** ⌊n^(1/k)⌋ by Newton's method from `x`, which must be at least the root; quadratic once close. */
function iroot(n: bigint, k: bigint, x: bigint): bigint {
  for (;;) {
    const y = ((k - 1n) * x + n / x ** (k - 1n)) / k;
    if (y >= x) return x;
    x = y;
  }
}

/** An over-estimate of n^(1/k) within about 2^-40 of it, from n's top 64 bits in floating point (Newton from a
 * power of two would crawl for large k). */
function rootAbove(n: bigint, bits: number, k: bigint): bigint {
  const shift = Math.max(0, bits - 64);
  const log2Root = (shift + Math.log2(Number(n >> BigInt(shift)))) / Number(k);
  const exp = Math.max(0, Math.floor(log2Root) - 52);
  return (BigInt(Math.ceil(2 ** (log2Root - exp) * (1 + 2 ** -40))) + 1n) << BigInt(exp);
}

function bigIntOf(base64url: string): bigint {
  const hex = Buffer.from(base64url, 'base64url').toString('hex');
  return hex === '' ? 0n : BigInt(`0x${hex}`);
}

function primesBelow(limit: number): bigint[] {
  const out: bigint[] = [];
  for (let i = 2; i < limit; i++) {
    let prime = true;
    for (let d = 2; d * d <= i; d++) {
      if (i % d === 0) {
        prime = false;
        break;
      }
    }
    if (prime) out.push(BigInt(i));
  }
  return out;
}
