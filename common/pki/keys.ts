// Key pairs: generated natively by node:crypto, usable both by node:tls (PEM) and by WebCrypto (CSR/cert signing).
import { type KeyObject, type webcrypto, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { TesseraError } from '../errors.js';
import { RSA_MIN_BITS } from './rsa-key-strength.js';

export type KeyAlgorithm = 'ec-p256' | 'rsa-2048';

export interface KeyPair {
  readonly algorithm: KeyAlgorithm;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

export const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const ECDSA_SHA256 = { name: 'ECDSA', hash: 'SHA-256' } as const;
export const RSA_PKCS1_SHA256 = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as const;

export function generateKeyPair(algorithm: KeyAlgorithm = 'ec-p256'): KeyPair {
  const { privateKey, publicKey } =
    algorithm === 'ec-p256'
      ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
      : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return Object.freeze({ algorithm, privateKey, publicKey });
}

/** Loads a PEM private key (PKCS#8 or SEC1/PKCS#1) and derives its public half. */
export function keyPairFromPem(pem: string | Buffer): KeyPair {
  const privateKey = createPrivateKey(pem);
  const publicKey = createPublicKey(privateKey);
  return Object.freeze({ algorithm: algorithmOf(publicKey), privateKey, publicKey });
}

/** Which supported algorithm a public key uses; anything weaker or unknown is refused. */
export function algorithmOf(key: KeyObject): KeyAlgorithm {
  const d = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec' && d?.namedCurve === 'prime256v1') return 'ec-p256';
  if (key.asymmetricKeyType === 'rsa' && (d?.modulusLength ?? 0) >= RSA_MIN_BITS) return 'rsa-2048';
  throw new TesseraError(
    'TESSERA_ERR_PKI_UNSUPPORTED_KEY',
    `unsupported key ${key.asymmetricKeyType}${d?.namedCurve ? ` ${d.namedCurve}` : ''}${d?.modulusLength ? ` ${d.modulusLength} bits` : ''}: use ECDSA P-256 or RSA of at least ${RSA_MIN_BITS} bits`,
  );
}

export function privateKeyPem(pair: KeyPair): string {
  return pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}

export function signingAlgorithm(alg: KeyAlgorithm) {
  return alg === 'ec-p256' ? ECDSA_SHA256 : RSA_PKCS1_SHA256;
}

function webAlgorithm(alg: KeyAlgorithm) {
  return alg === 'ec-p256' ? ECDSA_P256 : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
}

export function toWebCryptoPair(pair: KeyPair): webcrypto.CryptoKeyPair {
  const alg = webAlgorithm(pair.algorithm);
  return {
    privateKey: pair.privateKey.toCryptoKey(alg, true, ['sign']) as webcrypto.CryptoKey,
    publicKey: pair.publicKey.toCryptoKey(alg, true, ['verify']) as webcrypto.CryptoKey,
  };
}

export function toWebPublicKey(key: KeyObject): webcrypto.CryptoKey {
  return key.toCryptoKey(webAlgorithm(algorithmOf(key)), true, ['verify']) as webcrypto.CryptoKey;
}

/** True when the private key is the one whose public half the certificate carries. */
export function keyMatchesPublicKey(privateKey: KeyObject, publicKey: KeyObject): boolean {
  const derived = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  return derived.equals(publicKey.export({ type: 'spki', format: 'der' }));
}
