// Trust bundles: the X.509 authorities of each trust domain, with SHA-256 fingerprints.
import { X509Certificate, createHash } from 'node:crypto';
import { TesseraError } from '../errors.js';
import { decodeCertificates, encodePem } from '../pki/pem.js';
import { TrustDomain } from './trust-domain.js';

export class TrustBundle {
  readonly trustDomain: TrustDomain;
  readonly authorities: readonly X509Certificate[];
  #anchors: ReadonlySet<string> | undefined;

  constructor(trustDomain: TrustDomain, authorities: readonly X509Certificate[]) {
    if (authorities.length === 0) throw new TesseraError('TESSERA_ERR_BUNDLE_EMPTY', `bundle for "${trustDomain}" holds no certificate`);
    for (const a of authorities) {
      if (!a.ca) throw new TesseraError('TESSERA_ERR_BUNDLE_NOT_CA', `bundle certificate ${a.subject} is not a CA`);
    }
    this.trustDomain = trustDomain;
    // Deduplicate by fingerprint so a bundle that lists a CA twice stays one authority.
    const seen = new Set<string>();
    this.authorities = Object.freeze(authorities.filter((a) => !seen.has(a.fingerprint256) && seen.add(a.fingerprint256)));
  }

  /** PEM text or DER bytes; several CERTIFICATE blocks allowed. */
  static parse(trustDomain: TrustDomain | string, input: string | Uint8Array): TrustBundle {
    const td = typeof trustDomain === 'string' ? TrustDomain.parse(trustDomain) : trustDomain;
    let certs: X509Certificate[];
    try {
      certs = decodeCertificates(input).map((der) => new X509Certificate(der));
    } catch (e) {
      if (e instanceof TesseraError) throw e;
      throw new TesseraError('TESSERA_ERR_PEM_MALFORMED', `bundle for "${td}": ${(e as Error).message}`);
    }
    return new TrustBundle(td, certs);
  }

  /** anchorOf() of each authority, computed once. */
  anchors(): ReadonlySet<string> {
    this.#anchors ??= new Set(this.authorities.map(anchorOf));
    return this.#anchors;
  }

  /** SHA-256 fingerprints as lower-case hex without colons. */
  fingerprints(): string[] {
    return this.authorities.map(fingerprintOf);
  }

  toPem(): string {
    return this.authorities.map((a) => encodePem('CERTIFICATE', a.raw)).join('');
  }
}

/**
 * An authority as a path anchors on it: its name and the SHA-256 of its key (SPKI). A root renewed with the same name
 * and key anchors the same paths, though its certificate (and fingerprint) is new.
 */
export function anchorOf(cert: X509Certificate): string {
  return `${cert.subject}\n${createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest('hex')}`;
}

/** SHA-256 of a certificate, lower-case hex without separators (node:crypto's `fingerprint256` form rewritten). */
export function fingerprintOf(cert: { readonly fingerprint256: string }): string {
  return cert.fingerprint256.replaceAll(':', '').toLowerCase();
}

/** Bundles keyed by trust domain; immutable, replaced whole on update. */
export class TrustBundleSet {
  readonly #bundles: ReadonlyMap<string, TrustBundle>;

  constructor(bundles: Iterable<TrustBundle>) {
    const m = new Map<string, TrustBundle>();
    for (const b of bundles) m.set(b.trustDomain.name, b);
    this.#bundles = m;
  }

  get(td: TrustDomain | string): TrustBundle | undefined {
    return this.#bundles.get(typeof td === 'string' ? td : td.name);
  }

  trustDomains(): string[] {
    return [...this.#bundles.keys()].sort();
  }

  bundles(): TrustBundle[] {
    return this.trustDomains().map((td) => this.#bundles.get(td)!);
  }

  /** Every authority of every trust domain, as PEM: the CA list for node:tls (per-domain checks happen after). */
  allAuthoritiesPem(): string[] {
    return this.bundles().flatMap((b) => b.authorities.map((a) => encodePem('CERTIFICATE', a.raw)));
  }

  with(bundle: TrustBundle): TrustBundleSet {
    return new TrustBundleSet([...this.#bundles.values(), bundle]);
  }
}
