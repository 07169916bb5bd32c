// Test CA: mints roots, intermediates and SVIDs (valid and every broken kind) at test time. Nothing committed.
import type { X509Certificate } from 'node:crypto';
import { type CertificateTemplate, issueCertificate } from '../../common/pki/cert-builder.js';
import { type KeyAlgorithm, type KeyPair, generateKeyPair, privateKeyPem } from '../../common/pki/keys.js';
import { encodePem } from '../../common/pki/pem.js';

export type BrokenKind =
  | 'ca-leaf'
  | 'two-uri-sans'
  | 'no-uri-san'
  | 'key-cert-sign'
  | 'crl-sign'
  | 'no-digital-signature'
  | 'bad-signature'
  | 'non-spiffe-uri'
  /** An extension no one understands, marked critical (RFC 5280: reject). */
  | 'unknown-critical'
  /** The same extension twice (RFC 5280: must not). */
  | 'duplicate-san';

export interface MintedSvid {
  readonly chain: X509Certificate[];
  readonly key: KeyPair;
  readonly chainPem: string;
  readonly keyPem: string;
  readonly leaf: X509Certificate;
}

export interface MintOptions {
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  readonly broken?: BrokenKind;
  readonly algorithm?: KeyAlgorithm;
  readonly key?: KeyPair;
  readonly dnsSans?: string[];
  /** Leaf signed directly by the root (no intermediate in the chain). */
  readonly direct?: boolean;
  /** URI SANs exactly as given, instead of the SPIFFE ID (hostile strings, several SANs). */
  readonly uriSans?: string[];
  /** Certificates appended to the chain after the real ones (unrelated extras). */
  readonly extraChain?: X509Certificate[];
  readonly subject?: string;
}

const HOUR = 3_600_000;

export class TestCa {
  readonly trustDomain: string;
  readonly root: { cert: X509Certificate; key: KeyPair };
  readonly intermediate: { cert: X509Certificate; key: KeyPair };
  readonly #nowMs: number;

  private constructor(td: string, nowMs: number, root: TestCa['root'], intermediate: TestCa['intermediate']) {
    this.trustDomain = td;
    this.#nowMs = nowMs;
    this.root = root;
    this.intermediate = intermediate;
  }

  static async create(opts: { trustDomain?: string; nowMs?: number; algorithm?: KeyAlgorithm; rootName?: string } = {}): Promise<TestCa> {
    const td = opts.trustDomain ?? 'example.org';
    const now = opts.nowMs ?? Date.now();
    const rootKey = generateKeyPair(opts.algorithm);
    const rootCert = await issueCertificate({
      subject: opts.rootName ?? `CN=Test Root ${td}, O=Tessera Test`,
      publicKey: rootKey.publicKey,
      signer: rootKey,
      notBefore: new Date(now - HOUR),
      notAfter: new Date(now + 24 * HOUR),
      basicConstraints: { ca: true },
      keyUsage: ['keyCertSign', 'cRLSign'],
      uriSans: [`spiffe://${td}`],
    });
    const intKey = generateKeyPair(opts.algorithm);
    const intCert = await issueCertificate({
      subject: `CN=Test Intermediate ${td}, O=Tessera Test`,
      publicKey: intKey.publicKey,
      issuer: rootCert,
      signer: rootKey,
      notBefore: new Date(now - HOUR),
      notAfter: new Date(now + 12 * HOUR),
      basicConstraints: { ca: true, pathLength: 0 },
      keyUsage: ['keyCertSign', 'cRLSign'],
      uriSans: [`spiffe://${td}`],
    });
    return new TestCa(td, now, { cert: rootCert, key: rootKey }, { cert: intCert, key: intKey });
  }

  bundlePem(): string {
    return encodePem('CERTIFICATE', this.root.cert.raw);
  }

  async mintSvid(spiffeId: string, opts: MintOptions = {}): Promise<MintedSvid> {
    const key = opts.key ?? generateKeyPair(opts.algorithm);
    const issuer = opts.direct ? this.root : this.intermediate;
    const b = opts.broken;
    let uriSans: string[] = opts.uriSans ?? [spiffeId];
    if (b === 'two-uri-sans') uriSans = [spiffeId, `${spiffeId}-other`];
    if (b === 'no-uri-san') uriSans = [];
    if (b === 'non-spiffe-uri') uriSans = ['https://example.org/not-spiffe'];
    const keyUsage: CertificateTemplate['keyUsage'] =
      b === 'key-cert-sign' ? ['digitalSignature', 'keyCertSign']
      : b === 'crl-sign' ? ['digitalSignature', 'cRLSign']
      : b === 'no-digital-signature' ? ['keyEncipherment']
      : ['digitalSignature'];
    // A bad signature: the issuer's name and key identifiers, but signed by an unrelated key.
    const signer = b === 'bad-signature' ? generateKeyPair(issuer.key.algorithm) : issuer.key;
    const leaf = await issueCertificate({
      subject: opts.subject ?? 'O=Tessera Test',
      publicKey: key.publicKey,
      issuer: issuer.cert,
      signer,
      notBefore: opts.notBefore ?? new Date(this.#nowMs - 60_000),
      notAfter: opts.notAfter ?? new Date(this.#nowMs + HOUR),
      basicConstraints: { ca: b === 'ca-leaf' },
      keyUsage,
      uriSans,
      dnsSans: opts.dnsSans ?? [],
      extKeyUsage: ['serverAuth', 'clientAuth'],
      ...(b === 'unknown-critical' ? { extraExtensions: [{ oid: '1.3.6.1.4.1.55555.1.1', critical: true, value: Uint8Array.of(0x05, 0x00) }] } : {}),
      // A second SAN extension naming another workload: a reader that keeps the last one sees a different ID.
      ...(b === 'duplicate-san' ? { extraExtensions: [{ oid: '2.5.29.17', critical: false, value: sanDer(`${spiffeId}-other`) }] } : {}),
    });
    const chain = [...(opts.direct ? [leaf] : [leaf, this.intermediate.cert]), ...(opts.extraChain ?? [])];
    return {
      chain,
      key,
      leaf,
      chainPem: chain.map((c) => encodePem('CERTIFICATE', c.raw)).join(''),
      keyPem: privateKeyPem(key),
    };
  }
}

/** DER of a subjectAltName value holding one URI (short lengths only: test use). */
function sanDer(uri: string): Uint8Array {
  const u = Buffer.from(uri, 'latin1');
  return Uint8Array.from([0x30, u.length + 2, 0x86, u.length, ...u]);
}
