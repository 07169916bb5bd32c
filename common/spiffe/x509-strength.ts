// Which keys and signature algorithms a certificate on a verified path may carry: the set the CA issues and the
// bundle loader accepts (common/pki/keys.ts, spiffe-bundle.ts), so a certificate is an identity in both directions.
// OpenSSL (security level 2) refuses SHA-1, MD5 and RSA below 2048 bits on the outbound side; these rules give the
// inbound side, the edge and the control plane the same answer. Allow-lists, not deny-lists: anything not named
// here is refused. Reads the DER fields only (x509-fields.ts), no key object: cheap enough for every full handshake.
import { RSA_MIN_BITS, rsaExponentWeakness } from '../pki/rsa-key-strength.js';
import type { KeyInfo, SignatureAlgorithm } from './x509-fields.js';

const SHA2: Readonly<Record<string, string>> = {
  '2.16.840.1.101.3.4.2.1': 'SHA-256',
  '2.16.840.1.101.3.4.2.2': 'SHA-384',
  '2.16.840.1.101.3.4.2.3': 'SHA-512',
};

/** ECDSA and RSA PKCS#1 v1.5 with SHA-256/384/512, what the CA and CSR reader accept (RSASSA-PSS: by its hash). */
const SIGNATURES: Readonly<Record<string, string>> = {
  '1.2.840.10045.4.3.2': 'ecdsa-with-SHA256',
  '1.2.840.10045.4.3.3': 'ecdsa-with-SHA384',
  '1.2.840.10045.4.3.4': 'ecdsa-with-SHA512',
  '1.2.840.113549.1.1.11': 'sha256WithRSAEncryption',
  '1.2.840.113549.1.1.12': 'sha384WithRSAEncryption',
  '1.2.840.113549.1.1.13': 'sha512WithRSAEncryption',
};
const OID_RSASSA_PSS = '1.2.840.113549.1.1.10';

/** Names of refused algorithms met in practice, for the message only. */
const REFUSED_NAMES: Readonly<Record<string, string>> = {
  '1.2.840.113549.1.1.2': 'md2WithRSAEncryption',
  '1.2.840.113549.1.1.4': 'md5WithRSAEncryption',
  '1.2.840.113549.1.1.5': 'sha1WithRSAEncryption',
  '1.2.840.113549.1.1.14': 'sha224WithRSAEncryption',
  '1.2.840.10045.4.1': 'ecdsa-with-SHA1',
  '1.2.840.10045.4.3.1': 'ecdsa-with-SHA224',
  '1.2.840.10040.4.3': 'dsa-with-SHA1',
  '1.3.14.3.2.26': 'SHA-1',
  '1.3.101.112': 'Ed25519',
  '1.3.101.113': 'Ed448',
  '1.2.840.10040.4.1': 'DSA',
};

const P256 = '1.2.840.10045.3.1.7';
const P384 = '1.3.132.0.34';
const P521 = '1.3.132.0.35';
const CURVE_NAMES: Readonly<Record<string, string>> = { [P256]: 'P-256', [P384]: 'P-384', [P521]: 'P-521' };
/** Leaves and intermediates: the curves the mesh's CAs issue on and its TLS signature schemes prefer. */
const PATH_CURVES: ReadonlySet<string> = new Set([P256, P384]);
/** Trust anchors: what a SPIFFE bundle document may hold (spiffe-bundle.ts), so an accepted bundle is usable. */
const ANCHOR_CURVES: ReadonlySet<string> = new Set([P256, P384, P521]);

const nameOf = (oid: string) => REFUSED_NAMES[oid] ?? oid;

/** Why this signature algorithm is not accepted on a verified path, or null. */
export function signatureWeakness(sig: SignatureAlgorithm): string | null {
  if (SIGNATURES[sig.oid]) return null;
  if (sig.oid === OID_RSASSA_PSS) return sig.pssHash && SHA2[sig.pssHash] ? null : `RSASSA-PSS with ${nameOf(sig.pssHash ?? '')}`;
  return nameOf(sig.oid);
}

/**
 * Why this key is not accepted, or null. `anchor`: a trust anchor, which may also be on P-521 (the bundle's set).
 * Only sizes and curves, and an RSA exponent's bound (the one every key read is held to: a larger one makes every
 * signature check with the key dearer): the costlier RSA checks (rsa-key-strength.ts) run where a key is issued or a
 * bundle loaded.
 */
export function keyWeakness(key: KeyInfo, anchor = false): string | null {
  if (key.type === 'rsa') {
    if (key.bits < RSA_MIN_BITS) return `an RSA key of ${key.bits} bits (at least ${RSA_MIN_BITS})`;
    const exponent = rsaExponentWeakness(key.exponentBits);
    return exponent ? `an RSA key with ${exponent}` : null;
  }
  if (key.type === 'ec') {
    if ((anchor ? ANCHOR_CURVES : PATH_CURVES).has(key.curve)) return null;
    return `an EC key on ${key.curve === '' ? 'explicit curve parameters' : (CURVE_NAMES[key.curve] ?? key.curve)} (${anchor ? 'P-256, P-384 or P-521' : 'P-256 or P-384'})`;
  }
  return `a ${nameOf(key.oid)} key (EC P-256/P-384 or RSA of ${RSA_MIN_BITS} bits or more)`;
}
