// The edge's server certificates: a default one plus more chosen by SNI (exact names, then "*.suffix"), loaded
// from files and reloaded all-or-nothing when any file changes (as ACME clients and cert-manager write them).
// With `workers: N` a worker starting while the files on disk are refused starts from the last good texts its
// siblings loaded (kept by the primary), so a restart never serves, or fails on, a set the others refused.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext, type TlsOptions } from 'node:tls';
import { TesseraError } from '../../../common/errors.js';
import { chainSizeFault } from '../../../common/pki/chain-size.js';
import { keyMatchesPublicKey } from '../../../common/pki/keys.js';
import { decodeCertificates } from '../../../common/pki/pem.js';
import { readSmallFile } from '../../../shared-io/bounded-read.js';
import { watchPaths } from '../../../shared-io/file-watch.js';
import { CIPHERS, minVersion, type TlsVersionSetting } from '../tls/tls-contexts.js';

export interface EdgeCertFiles {
  readonly serverNames: readonly string[];
  readonly certFile: string;
  readonly keyFile: string;
}

export interface EdgeCertificatesOptions {
  readonly defaultCert: EdgeCertFiles;
  readonly sni: readonly EdgeCertFiles[];
  readonly clientCaFile?: string;
  readonly tlsMinVersion: TlsVersionSetting;
  /** `last-good`: at start the files were refused and `lastGood` is served instead (until the files change). */
  readonly onReload: (result: 'success' | 'refused' | 'last-good', error?: unknown) => void;
  /** The texts of the last set the listener's siblings loaded (workers: N); validated again whole before use. */
  readonly lastGood?: EdgeCertTexts;
  /** Every set loaded (at start and on each successful reload), for the primary to hand to a restarted worker. */
  readonly onLoaded?: (texts: EdgeCertTexts) => void;
}

/** A whole set as PEM texts: the default pair first, then the SNI pairs in config order, and the client CAs. */
export interface EdgeCertTexts {
  readonly pairs: readonly { readonly cert: string; readonly key: string }[];
  readonly clientCa?: string;
}

interface Loaded {
  readonly defaultOptions: TlsOptions;
  readonly exact: ReadonlyMap<string, SecureContext>;
  readonly wildcard: readonly { suffix: string; ctx: SecureContext }[];
  readonly notAfter: string;
  /** The client CA certificates, parsed: the anchors the edge's own client verifier builds paths to. */
  readonly clientAuthorities: readonly X509Certificate[];
}

/** The most a certificate, key or client CA file may hold (a public CA bundle is ~200 KiB). */
const MAX_FILE_BYTES = 4 << 20;

/**
 * A file's text, only from a regular file of at most MAX_FILE_BYTES, opened without blocking: these files are read
 * again whenever they change, on the event loop, and a FIFO or a link to /dev/zero put in their place must be a
 * refused reload, not a frozen or exhausted proxy.
 */
function read(file: string): string {
  try {
    return readSmallFile(file, MAX_FILE_BYTES);
  } catch (e) {
    throw new TesseraError('TESSERA_ERR_EDGE_CERT_INVALID', `${file}: ${(e as Error).message}`, { file });
  }
}

function pair(files: EdgeCertFiles, cert: string, key: string): { cert: string; key: string; leaf: X509Certificate } {
  let leaf: X509Certificate;
  try {
    const fault = chainSizeFault(decodeCertificates(cert));
    if (fault) throw new Error(`the chain ${fault}`);
    leaf = new X509Certificate(cert);
    if (!keyMatchesPublicKey(createPrivateKey(key), leaf.publicKey)) throw new Error('the key does not match the certificate');
  } catch (e) {
    throw new TesseraError('TESSERA_ERR_EDGE_CERT_INVALID', `${files.certFile} / ${files.keyFile}: ${(e as Error).message}`, { file: files.certFile });
  }
  return { cert, key, leaf };
}

function clientCas(pem: string, file: string): X509Certificate[] {
  try {
    const certs = decodeCertificates(pem).map((der) => new X509Certificate(der));
    if (certs.length === 0 || certs.some((c) => !c.ca)) throw new Error('every certificate must be a CA, and there must be one');
    return certs;
  } catch (e) {
    throw new TesseraError('TESSERA_ERR_EDGE_CERT_INVALID', `${file}: ${(e as Error).message}`, { file });
  }
}

export class EdgeCertificates {
  readonly #o: EdgeCertificatesOptions;
  #loaded: Loaded;
  #generation = 0;
  #watch: { close(): void } | undefined;

  constructor(opts: EdgeCertificatesOptions) {
    this.#o = opts;
    this.#loaded = this.#start();
  }

  /** Server options for the default certificate (setSecureContext takes the same). */
  get defaultOptions(): TlsOptions {
    return this.#loaded.defaultOptions;
  }

  get notAfter(): string {
    return this.#loaded.notAfter;
  }

  get clientAuthorities(): readonly X509Certificate[] {
    return this.#loaded.clientAuthorities;
  }

  /** Increases with every successful reload: client verdicts cached under an older one are stale. */
  get generation(): number {
    return this.#generation;
  }

  readonly sniCallback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    const name = servername.toLowerCase();
    const l = this.#loaded;
    const exact = l.exact.get(name);
    if (exact) {
      cb(null, exact);
      return;
    }
    for (const w of l.wildcard) if (name.endsWith(w.suffix) && name.length > w.suffix.length) {
      cb(null, w.ctx);
      return;
    }
    cb(null, undefined); // the default context
  };

  /** Watches every file; `onDefault` gets the new default options after a successful reload. */
  start(onDefault: (options: TlsOptions) => void): void {
    const files = [this.#o.defaultCert, ...this.#o.sni].flatMap((f) => [f.certFile, f.keyFile]);
    if (this.#o.clientCaFile) files.push(this.#o.clientCaFile);
    this.#watch = watchPaths({
      paths: files,
      onChange: () => {
        try {
          this.#loaded = this.#load(this.#read());
          this.#generation++;
          onDefault(this.#loaded.defaultOptions);
          this.#o.onReload('success');
        } catch (e) {
          this.#o.onReload('refused', e);
        }
      },
    });
  }

  stop(): void {
    this.#watch?.close();
  }

  /** The files' set; refused, the last good one when given (checked again whole), else the files' refusal. */
  #start(): Loaded {
    try {
      return this.#load(this.#read());
    } catch (e) {
      const last = this.#o.lastGood;
      if (!last || last.pairs.length !== 1 + this.#o.sni.length || (last.clientCa === undefined) !== (this.#o.clientCaFile === undefined)) throw e;
      const loaded = this.#load(last);
      this.#o.onReload('last-good', e);
      return loaded;
    }
  }

  #read(): EdgeCertTexts {
    const pairs = [this.#o.defaultCert, ...this.#o.sni].map((f) => ({ cert: read(f.certFile), key: read(f.keyFile) }));
    return { pairs, ...(this.#o.clientCaFile ? { clientCa: read(this.#o.clientCaFile) } : {}) };
  }

  #load(texts: EdgeCertTexts): Loaded {
    const ca = texts.clientCa;
    const clientAuthorities = ca ? clientCas(ca, this.#o.clientCaFile!) : [];
    const base = { minVersion: minVersion(this.#o.tlsMinVersion), ciphers: CIPHERS, ...(ca ? { ca } : {}) };
    const d = pair(this.#o.defaultCert, texts.pairs[0]!.cert, texts.pairs[0]!.key);
    const exact = new Map<string, SecureContext>();
    const wildcard: { suffix: string; ctx: SecureContext }[] = [];
    for (const [i, files] of this.#o.sni.entries()) {
      const p = pair(files, texts.pairs[i + 1]!.cert, texts.pairs[i + 1]!.key);
      const ctx = createSecureContext({ ...base, cert: p.cert, key: p.key });
      for (const n of files.serverNames) {
        if (n.startsWith('*.')) wildcard.push({ suffix: n.slice(1).toLowerCase(), ctx });
        else exact.set(n.toLowerCase(), ctx);
      }
    }
    wildcard.sort((a, b) => b.suffix.length - a.suffix.length);
    // Only a whole set that loaded is reported (the primary keeps it for a worker that starts later).
    this.#o.onLoaded?.(texts);
    return { defaultOptions: { ...base, cert: d.cert, key: d.key }, exact, wildcard, notAfter: new Date(d.leaf.validTo).toISOString(), clientAuthorities };
  }
}
