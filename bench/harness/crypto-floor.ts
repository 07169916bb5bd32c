// The crypto limit of this machine: `openssl speed` (system OpenSSL) and the same primitives through Node's OpenSSL,
// and the per-side floor of a full TLS 1.3 mTLS handshake built from them (1 sign + 3 verify + 1 key exchange).
import { execFile } from 'node:child_process';
import { createPublicKey, diffieHellman, encapsulate, generateKeyPairSync, sign, verify } from 'node:crypto';
import { performance } from 'node:perf_hooks';

/** Operations per second of the primitives a handshake uses (null when not measured). */
export interface CryptoRates {
  readonly ecdsaP256SignPerSec: number | null;
  readonly ecdsaP256VerifyPerSec: number | null;
  /** One ECDH P-256 derive (openssl speed) or keygen + derive (Node, the ephemeral side of a handshake). */
  readonly ecdhP256PerSec: number | null;
  readonly x25519PerSec: number | null;
  readonly rsa2048SignPerSec: number | null;
  readonly rsa2048VerifyPerSec: number | null;
  /** ML-KEM-768 encapsulation (the server's share of X25519MLKEM768). */
  readonly mlkem768EncapPerSec: number | null;
}

/** Parses `openssl speed -mr` lines: +F2 RSA sign/verify, +F4 ECDSA sign/verify, +F5 ECDH op/s (bits 256 = P-256, 253 = X25519). */
export function parseOpensslSpeedMr(text: string): CryptoRates {
  let ecdsaSign: number | null = null;
  let ecdsaVerify: number | null = null;
  let ecdh: number | null = null;
  let x25519: number | null = null;
  let rsaSign: number | null = null;
  let rsaVerify: number | null = null;
  for (const line of text.split('\n')) {
    const f = line.trim().split(':');
    const bits = Number(f[2]);
    const a = Number(f[3]);
    const b = Number(f[4]);
    if (f[0] === '+F4' && bits === 256) [ecdsaSign, ecdsaVerify] = [a, b];
    else if (f[0] === '+F5' && bits === 256) ecdh = a;
    else if (f[0] === '+F5' && bits === 253) x25519 = a;
    else if (f[0] === '+F2' && bits === 2048) [rsaSign, rsaVerify] = [a, b];
  }
  return {
    ecdsaP256SignPerSec: ecdsaSign,
    ecdsaP256VerifyPerSec: ecdsaVerify,
    ecdhP256PerSec: ecdh,
    x25519PerSec: x25519,
    rsa2048SignPerSec: rsaSign,
    rsa2048VerifyPerSec: rsaVerify,
    mlkem768EncapPerSec: null,
  };
}

/** µs of CPU for one side of a full mTLS handshake: 1 sign + 3 verifies (leaf, intermediate, CertificateVerify) + key exchange. */
export function handshakeFloorUs(r: CryptoRates, kex: 'p256' | 'x25519' | 'x25519mlkem768' = 'p256', sig: 'ecdsa' | 'rsa' = 'ecdsa'): number | null {
  const us = (perSec: number | null) => (perSec && perSec > 0 ? 1e6 / perSec : null);
  // The CA chain is ECDSA in every case: with RSA leaves, the peer's leaf check stays ECDSA; the CertificateVerify
  // and our own signature are RSA.
  const signUs = sig === 'ecdsa' ? us(r.ecdsaP256SignPerSec) : us(r.rsa2048SignPerSec);
  const ecVerify = us(r.ecdsaP256VerifyPerSec);
  const leafVerifyUs = sig === 'ecdsa' ? ecVerify : us(r.rsa2048VerifyPerSec);
  const kexUs = kex === 'p256' ? us(r.ecdhP256PerSec) : kex === 'x25519' ? us(r.x25519PerSec) : sumOrNull(us(r.x25519PerSec), us(r.mlkem768EncapPerSec));
  return sumOrNull(signUs, ecVerify, ecVerify, leafVerifyUs, kexUs);
}

function sumOrNull(...xs: (number | null)[]): number | null {
  return xs.every((x) => x !== null) ? (xs as number[]).reduce((a, b) => a + b, 0) : null;
}

/** `openssl speed -seconds 1 -mr ...` (about 6 s). */
export function runOpensslSpeed(openssl: string): Promise<CryptoRates> {
  return new Promise((resolve, reject) => {
    execFile(openssl, ['speed', '-seconds', '1', '-mr', 'ecdsap256', 'ecdhp256', 'ecdhx25519', 'rsa2048'], { timeout: 60_000 }, (err, stdout) => {
      if (err) reject(err);
      else resolve(parseOpensslSpeedMr(stdout));
    });
  });
}

function opsPerSec(fn: () => void, budgetMs: number): number {
  for (let i = 0; i < 20; i++) fn();
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < budgetMs) {
    for (let i = 0; i < 10; i++) fn();
    n += 10;
    t = performance.now();
  }
  return n / ((t - t0) / 1000);
}

/** The same primitives through Node's own OpenSSL (what the Tessera proxy uses), ~`budgetMs` each. */
export function nodeCryptoRates(budgetMs = 200): CryptoRates {
  const data = Buffer.alloc(64, 7);
  const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const ecSig = sign('sha256', data, ec.privateKey);
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rsaSig = sign('sha256', data, rsa.privateKey);
  const peerEc = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const peerX = generateKeyPairSync('x25519');
  let mlkem: number | null = null;
  try {
    const kemPub = createPublicKey(generateKeyPairSync('ml-kem-768').privateKey);
    mlkem = opsPerSec(() => encapsulate(kemPub), budgetMs);
  } catch {
    mlkem = null; // an OpenSSL without ML-KEM
  }
  return {
    ecdsaP256SignPerSec: opsPerSec(() => sign('sha256', data, ec.privateKey), budgetMs),
    ecdsaP256VerifyPerSec: opsPerSec(() => verify('sha256', data, ec.publicKey, ecSig), budgetMs),
    // A handshake's ECDHE side = ephemeral keygen + derive.
    ecdhP256PerSec: opsPerSec(() => diffieHellman({ privateKey: generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey, publicKey: peerEc.publicKey }), budgetMs),
    x25519PerSec: opsPerSec(() => diffieHellman({ privateKey: generateKeyPairSync('x25519').privateKey, publicKey: peerX.publicKey }), budgetMs),
    rsa2048SignPerSec: opsPerSec(() => sign('sha256', data, rsa.privateKey), budgetMs),
    rsa2048VerifyPerSec: opsPerSec(() => verify('sha256', data, rsa.publicKey, rsaSig), budgetMs),
    mlkem768EncapPerSec: mlkem,
  };
}
