// Certificates the project's own builder refuses to make (common/pki/cert-builder.ts signs SHA-256 with P-256 or
// RSA-2048+ only): weak keys (RSA-512/1024, other curves, Ed25519, an RSA public exponent of 3,070 bits), weak
// signatures (SHA-1, MD5, RSASSA-PSS with SHA-1), pathLenConstraints and extendedKeyUsages of any kind. Built from DER with the CA's own writer and signed
// with node:crypto, so every one verifies under its issuer's key: only the rule under test makes it fail.
import { type KeyObject, X509Certificate, constants, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, generatePrimeSync, randomBytes, sign } from 'node:crypto';
import { bitString, contextTag, extension, octetString, oid, sequence, set, smallInteger, time, tlv, unsignedInteger } from '../../common/pki/der-writer.js';
import { children, readNode } from '../../common/pki/der.js';
import { encodePem } from '../../common/pki/pem.js';

export type ForgeKeyKind = 'ec-p256' | 'ec-p384' | 'ec-p521' | 'ec-secp256k1' | 'rsa-512' | 'rsa-1024' | 'rsa-2048' | 'rsa-3072-e3070' | 'ed25519';
export type ForgeSignature = 'ecdsa-sha256' | 'ecdsa-sha384' | 'ecdsa-sha1' | 'rsa-sha256' | 'rsa-sha1' | 'rsa-md5' | 'rsa-pss-sha256' | 'rsa-pss-sha1' | 'ed25519';

export interface ForgeKeyPair {
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
}

export interface Forged {
  readonly cert: X509Certificate;
  readonly privateKey: KeyObject;
}

export const EKU = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  codeSigning: '1.3.6.1.5.5.7.3.3',
  any: '2.5.29.37.0',
} as const;

export interface ForgeTemplate {
  /** The subject's common name. */
  readonly cn: string;
  readonly key: ForgeKeyPair;
  /** Absent: self-signed with `key`. */
  readonly issuer?: Forged;
  readonly ca?: boolean;
  readonly pathLen?: number;
  readonly uriSans?: readonly string[];
  /** extendedKeyUsage purposes (dotted OIDs); absent: no such extension. */
  readonly extKeyUsage?: readonly string[];
  readonly extKeyUsageCritical?: boolean;
  /** nameConstraints (RFC 5280 §4.2.1.10): subtrees of URI hosts, DNS names or IP addresses (raw bytes), critical. */
  readonly nameConstraints?: { readonly permitted?: readonly ForgeSubtree[]; readonly excluded?: readonly ForgeSubtree[] };
  /** A nameConstraints extension value given as raw DER (odd encodings), critical; instead of `nameConstraints`. */
  readonly rawNameConstraints?: Uint8Array;
  /** Default: SHA-256 with the signer's key type. */
  readonly signature?: ForgeSignature;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export type ForgeSubtree = { readonly uri: string } | { readonly dns: string } | { readonly ip: Uint8Array };

/** GeneralSubtrees [n] of GeneralSubtree ::= SEQUENCE { base GeneralName } (URI [6], dNSName [2], iPAddress [7]). */
const subtrees = (n: number, list: readonly ForgeSubtree[]) =>
  contextTag(n, true, ...list.map((s) => sequence('uri' in s ? contextTag(6, false, Buffer.from(s.uri, 'ascii')) : 'dns' in s ? contextTag(2, false, Buffer.from(s.dns, 'ascii')) : contextTag(7, false, s.ip))));

const CURVES: Readonly<Record<string, string>> = { 'ec-p256': 'prime256v1', 'ec-p384': 'secp384r1', 'ec-p521': 'secp521r1', 'ec-secp256k1': 'secp256k1' };

export function forgeKey(kind: ForgeKeyKind): ForgeKeyPair {
  if (kind === 'ed25519') return generateKeyPairSync('ed25519');
  if (kind === 'rsa-3072-e3070') return hugeExponentRsa();
  if (kind.startsWith('rsa-')) return generateKeyPairSync('rsa', { modulusLength: Number(kind.slice(4)) });
  return generateKeyPairSync('ec', { namedCurve: CURVES[kind]! });
}

const b64u = (v: bigint) => Buffer.from(v.toString(16).padStart(Math.ceil(v.toString(16).length / 2) * 2, '0'), 'hex').toString('base64url');

/** x^-1 mod m (extended Euclid); x and m coprime. */
function inverse(x: bigint, m: bigint): bigint {
  let [a, b, u, v] = [x % m, m, 1n, 0n];
  while (b !== 0n) {
    const q = a / b;
    [a, b, u, v] = [b, a - q * b, v, u - q * v];
  }
  return ((u % m) + m) % m;
}

/**
 * A real RSA-3072 key pair whose public exponent has 3,070 bits (OpenSSL takes any e < n for n ≤ 3072 bits): it signs
 * and verifies, but each check with it costs ~200 times one with 65537 (audit 56a F2). Bounded: a few tries at most.
 */
function hugeExponentRsa(): ForgeKeyPair {
  for (let attempt = 0; attempt < 8; attempt++) {
    const p = generatePrimeSync(1536, { bigint: true });
    const q = generatePrimeSync(1536, { bigint: true });
    const phi = (p - 1n) * (q - 1n);
    const e = (BigInt(`0x${randomBytes(384).toString('hex')}`) & ((1n << 3069n) - 1n)) | (1n << 3069n) | 1n;
    const d = inverse(e, phi);
    if ((d * e) % phi !== 1n || p === q) continue;
    const jwk = { kty: 'RSA', n: b64u(p * q), e: b64u(e), d: b64u(d), p: b64u(p), q: b64u(q), dp: b64u(d % (p - 1n)), dq: b64u(d % (q - 1n)), qi: b64u(inverse(q, p)) };
    const privateKey = createPrivateKey({ key: jwk, format: 'jwk' });
    return { privateKey, publicKey: createPublicKey(privateKey) };
  }
  throw new Error('no RSA key with a 3,070-bit exponent in 8 tries');
}

const NULL = Buffer.from([0x05, 0x00]);
const SHA256 = '2.16.840.1.101.3.4.2.1';
const algId = (id: string, ...params: Buffer[]) => sequence(oid(id), ...params);
const pssParams = (hashOid: string, saltLength: number) =>
  sequence(
    contextTag(0, true, algId(hashOid, NULL)),
    contextTag(1, true, algId('1.2.840.113549.1.1.8', algId(hashOid, NULL))),
    contextTag(2, true, smallInteger(saltLength)),
  );

/** AlgorithmIdentifier DER, and how node:crypto makes that signature. */
const SIGNATURES: Readonly<Record<ForgeSignature, { alg: Buffer; sign: (tbs: Buffer, key: KeyObject) => Buffer }>> = {
  'ecdsa-sha256': { alg: algId('1.2.840.10045.4.3.2'), sign: (t, k) => sign('sha256', t, k) },
  'ecdsa-sha384': { alg: algId('1.2.840.10045.4.3.3'), sign: (t, k) => sign('sha384', t, k) },
  'ecdsa-sha1': { alg: algId('1.2.840.10045.4.1'), sign: (t, k) => sign('sha1', t, k) },
  'rsa-sha256': { alg: algId('1.2.840.113549.1.1.11', NULL), sign: (t, k) => sign('sha256', t, k) },
  'rsa-sha1': { alg: algId('1.2.840.113549.1.1.5', NULL), sign: (t, k) => sign('sha1', t, k) },
  'rsa-md5': { alg: algId('1.2.840.113549.1.1.4', NULL), sign: (t, k) => sign('md5', t, k) },
  'rsa-pss-sha256': {
    alg: algId('1.2.840.113549.1.1.10', pssParams(SHA256, 32)),
    sign: (t, k) => sign('sha256', t, { key: k, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }),
  },
  // Empty RSASSA-PSS-params: every default, so SHA-1 with a 20-byte salt (RFC 4055).
  'rsa-pss-sha1': { alg: algId('1.2.840.113549.1.1.10', sequence()), sign: (t, k) => sign('sha1', t, { key: k, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 20 }) },
  ed25519: { alg: algId('1.3.101.112'), sign: (t, k) => sign(null, t, k) },
};

const nameDer = (cn: string) => sequence(set(sequence(oid('2.5.4.3'), tlv(0x0c, Buffer.from(cn, 'utf8')))));

/** A certificate's subject Name, as its DER bytes (the issuer field of what it signs, byte for byte). */
function subjectDerOf(cert: X509Certificate): Buffer {
  const der = cert.raw;
  const tbs = children(der, readNode(der, 0))[0]!;
  const fields = children(der, tbs);
  const subject = fields[fields[0]!.tag === 0xa0 ? 5 : 4]!;
  const headerStart = fields[fields.indexOf(subject) - 1]!.end;
  return Buffer.from(der.subarray(headerStart, subject.end));
}

function defaultSignature(key: KeyObject): ForgeSignature {
  const t = key.asymmetricKeyType;
  return t === 'rsa' ? 'rsa-sha256' : t === 'ed25519' ? 'ed25519' : 'ecdsa-sha256';
}

export function forgeCertificate(t: ForgeTemplate): Forged {
  const spki = t.key.publicKey.export({ type: 'spki', format: 'der' });
  const signer = t.issuer?.privateKey ?? t.key.privateKey;
  const sig = SIGNATURES[t.signature ?? defaultSignature(signer)];
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  const exts: Buffer[] = [
    extension('2.5.29.19', true, t.ca ? sequence(Buffer.from([0x01, 0x01, 0xff]), ...(t.pathLen === undefined ? [] : [smallInteger(t.pathLen)])) : sequence()),
    // keyCertSign + cRLSign for a CA, digitalSignature for a leaf.
    extension('2.5.29.15', true, t.ca ? Buffer.from([0x03, 0x02, 0x01, 0x06]) : Buffer.from([0x03, 0x02, 0x07, 0x80])),
    extension('2.5.29.14', false, octetString(createHash('sha1').update(spki).digest())),
  ];
  if (t.uriSans?.length) exts.push(extension('2.5.29.17', false, sequence(...t.uriSans.map((u) => contextTag(6, false, Buffer.from(u, 'ascii'))))));
  if (t.rawNameConstraints) exts.push(extension('2.5.29.30', true, t.rawNameConstraints));
  if (t.nameConstraints) {
    const { permitted = [], excluded = [] } = t.nameConstraints;
    exts.push(extension('2.5.29.30', true, sequence(...(permitted.length ? [subtrees(0, permitted)] : []), ...(excluded.length ? [subtrees(1, excluded)] : []))));
  }
  if (t.extKeyUsage) exts.push(extension('2.5.29.37', t.extKeyUsageCritical ?? false, sequence(...t.extKeyUsage.map((o) => oid(o)))));
  const tbs = sequence(
    contextTag(0, true, smallInteger(2)),
    unsignedInteger(serial),
    sig.alg,
    t.issuer ? subjectDerOf(t.issuer.cert) : nameDer(t.cn),
    sequence(time(t.notBefore.getTime()), time(t.notAfter.getTime())),
    nameDer(t.cn),
    spki,
    contextTag(3, true, sequence(...exts)),
  );
  const der = sequence(tbs, sig.alg, bitString(sig.sign(tbs, signer)));
  return { cert: new X509Certificate(der), privateKey: t.key.privateKey };
}

/** Chain PEM (the given certificates in order) and the leaf's key PEM, as a TLS client presents them. */
export function clientCredentials(chain: readonly X509Certificate[], key: KeyObject): { chainPem: string; keyPem: string } {
  return { chainPem: chain.map((c) => encodePem('CERTIFICATE', c.raw)).join(''), keyPem: key.export({ type: 'pkcs8', format: 'pem' }) as string };
}
