// The high-S twin of an ES256 JWT: the same header and claims with the signature (r, s) written as (r, n − s),
// which verifies too (ECDSA's malleability). Tests use it to check that a low-S-only trust domain refuses it.

/** The order n of P-256. */
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

/** The s half of an ES256 token's signature, as a number. */
export function sOfEs256(token: string): bigint {
  const raw = Buffer.from(token.split('.')[2]!, 'base64url');
  return BigInt(`0x${raw.subarray(32).toString('hex')}`);
}

/** Whether an ES256 token's signature has a low S (s ≤ n/2), the one spelling Tessera signs. */
export function isLowS(token: string): boolean {
  return sOfEs256(token) <= P256_N >> 1n;
}

/** `token` with (r, n − s) in place of (r, s). */
export function highSTwin(token: string): string {
  const [h, c, sig] = token.split('.') as [string, string, string];
  const raw = Buffer.from(sig, 'base64url');
  const flipped = Buffer.from((P256_N - sOfEs256(token)).toString(16).padStart(64, '0'), 'hex');
  return `${h}.${c}.${Buffer.concat([raw.subarray(0, 32), flipped]).toString('base64url')}`;
}
