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
  | 'non-spiffe-uri';

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
    let uriSans: string[] = [spiffeId];
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
      subject: 'O=Tessera Test',
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
    });
    const chain = opts.direct ? [leaf] : [leaf, this.intermediate.cert];
    return {
      chain,
      key,
      leaf,
      chainPem: chain.map((c) => encodePem('CERTIFICATE', c.raw)).join(''),
      keyPem: privateKeyPem(key),
    };
  }
}
