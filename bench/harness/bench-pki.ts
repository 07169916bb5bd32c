// The benchmark PKI, minted at run time: root → intermediate → SPIFFE leaves, written as files every peer can load.
import type { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { issueCertificate } from '../../common/pki/cert-builder.js';
import { type KeyAlgorithm, type KeyPair, generateKeyPair, privateKeyPem } from '../../common/pki/keys.js';
import { encodePem } from '../../common/pki/pem.js';

export const BENCH_TRUST_DOMAIN = 'bench.local';
export const CLIENT_ID = `spiffe://${BENCH_TRUST_DOMAIN}/ns/default/sa/client`;
export const SERVER_ID = `spiffe://${BENCH_TRUST_DOMAIN}/ns/default/sa/server`;
/** A DNS SAN beside the URI SAN, because nginx and HAProxy can check a server's name only against DNS SANs. */
export const SERVER_DNS = 'server.bench.local';
/** The certificate both edge proxies (Tessera, nginx) show outside clients: same CA, a DNS SAN as a public cert has. */
export const EDGE_ID = `spiffe://${BENCH_TRUST_DOMAIN}/ns/default/sa/edge`;
export const EDGE_DNS = 'edge.bench.local';

const HOUR = 3_600_000;

/** Paths of one leaf: chain = leaf + intermediate (what every peer sends); combined = chain + key (HAProxy `crt`). */
export interface LeafFiles {
  readonly spiffeId: string;
  readonly chainFile: string;
  readonly keyFile: string;
  readonly combinedFile: string;
  readonly serialHex: string;
  readonly chainPem: string;
  readonly keyPem: string;
}

export interface MintedLeaf {
  readonly spiffeId: string;
  readonly chainPem: string;
  readonly keyPem: string;
  readonly serialHex: string;
}

export class BenchPki {
  readonly dir: string;
  /** The root alone: what every peer trusts. */
  readonly rootFile: string;
  readonly #intermediate: { cert: X509Certificate; key: KeyPair };
  readonly #nowMs: number;

  private constructor(dir: string, rootFile: string, intermediate: { cert: X509Certificate; key: KeyPair }, nowMs: number) {
    this.dir = dir;
    this.rootFile = rootFile;
    this.#intermediate = intermediate;
    this.#nowMs = nowMs;
  }

  /** CA keys are ECDSA P-256 in every case; `algorithm` picks the leaves' keys. */
  static async create(dir: string, nowMs: number = Date.now()): Promise<BenchPki> {
    const rootKey = generateKeyPair('ec-p256');
    const root = await issueCertificate({
      subject: 'CN=Tessera Bench Root, O=Tessera Bench',
      publicKey: rootKey.publicKey,
      signer: rootKey,
      notBefore: new Date(nowMs - HOUR),
      notAfter: new Date(nowMs + 48 * HOUR),
      basicConstraints: { ca: true },
      keyUsage: ['keyCertSign', 'cRLSign'],
      uriSans: [`spiffe://${BENCH_TRUST_DOMAIN}`],
    });
    const intKey = generateKeyPair('ec-p256');
    const intermediate = await issueCertificate({
      subject: 'CN=Tessera Bench Intermediate, O=Tessera Bench',
      publicKey: intKey.publicKey,
      issuer: root,
      signer: rootKey,
      notBefore: new Date(nowMs - HOUR),
      notAfter: new Date(nowMs + 24 * HOUR),
      basicConstraints: { ca: true, pathLength: 0 },
      keyUsage: ['keyCertSign', 'cRLSign'],
      uriSans: [`spiffe://${BENCH_TRUST_DOMAIN}`],
    });
    const rootFile = join(dir, 'root.pem');
    await writeFile(rootFile, encodePem('CERTIFICATE', root.raw));
    return new BenchPki(dir, rootFile, { cert: intermediate, key: intKey }, nowMs);
  }

  /** A leaf for `spiffeId` (EKU serverAuth + clientAuth), not written anywhere. */
  async mint(spiffeId: string, algorithm: KeyAlgorithm = 'ec-p256'): Promise<MintedLeaf> {
    const key = generateKeyPair(algorithm);
    const leaf = await issueCertificate({
      subject: 'O=Tessera Bench',
      publicKey: key.publicKey,
      issuer: this.#intermediate.cert,
      signer: this.#intermediate.key,
      notBefore: new Date(this.#nowMs - 60_000),
      notAfter: new Date(this.#nowMs + 12 * HOUR),
      basicConstraints: { ca: false },
      keyUsage: algorithm === 'rsa-2048' ? ['digitalSignature', 'keyEncipherment'] : ['digitalSignature'],
      uriSans: [spiffeId],
      dnsSans: spiffeId === SERVER_ID ? [SERVER_DNS] : spiffeId === EDGE_ID ? [EDGE_DNS] : [],
      extKeyUsage: ['serverAuth', 'clientAuth'],
    });
    return {
      spiffeId,
      chainPem: encodePem('CERTIFICATE', leaf.raw) + encodePem('CERTIFICATE', this.#intermediate.cert.raw),
      keyPem: privateKeyPem(key),
      serialHex: leaf.serialNumber.toLowerCase(),
    };
  }

  /** Mints and writes `<name>.pem` (chain), `<name>.key` (0600) and `<name>.combined.pem` (chain + key, 0600). */
  async writeLeaf(name: string, spiffeId: string, algorithm: KeyAlgorithm = 'ec-p256'): Promise<LeafFiles> {
    return this.writeMinted(name, await this.mint(spiffeId, algorithm));
  }

  async writeMinted(name: string, m: MintedLeaf): Promise<LeafFiles> {
    const chainFile = join(this.dir, `${name}.pem`);
    const keyFile = join(this.dir, `${name}.key`);
    const combinedFile = join(this.dir, `${name}.combined.pem`);
    await writeFile(chainFile, m.chainPem);
    await writeFile(keyFile, m.keyPem, { mode: 0o600 });
    await writeFile(combinedFile, m.chainPem + m.keyPem, { mode: 0o600 });
    return { spiffeId: m.spiffeId, chainFile, keyFile, combinedFile, serialHex: m.serialHex, chainPem: m.chainPem, keyPem: m.keyPem };
  }
}
