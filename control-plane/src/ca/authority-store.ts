// Persists the CA in <dataDir>/ca: one key and one certificate file per root and intermediate, and
// ca-state.json naming them. New files are written first, the state file is renamed last; files no state
// names (a crash between the two) are swept at load. Keys are 0600 and never leave this directory.
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { TesseraError } from '../../../common/errors.js';
import { keyMatchesPublicKey, keyPairFromPem } from '../../../common/pki/keys.js';
import { TMP_MARKER, writeFileAtomicSync } from './atomic-file.js';
import type { AuthorityRecord, CaStateFile, CertWithKey, LoadedAuthority } from './authority.js';

export const STATE_FILE = 'ca-state.json';

/** A file to write before the state that names it. */
export interface MaterialFile {
  readonly name: string;
  readonly text: string;
  readonly secret: boolean;
}

/** Named points in a commit where a test can make the process kill itself (see docs/control-plane.md). */
export type CrashPoint = 'ca-after-material' | 'ca-after-state';

export interface AuthorityStoreOptions {
  readonly dir: string;
  /** Test seam: called at each crash point; the real process passes a hook only when asked to by env. */
  readonly crashHook?: (point: CrashPoint) => void;
}

export interface LoadedCa {
  readonly state: CaStateFile;
  readonly authorities: readonly LoadedAuthority[];
}

function corrupt(message: string, cause?: unknown): TesseraError {
  return new TesseraError('TESSERA_ERR_CA_STATE_CORRUPT', message, {}, cause === undefined ? undefined : { cause });
}

export class AuthorityStore {
  readonly #dir: string;
  readonly #crash: ((p: CrashPoint) => void) | undefined;

  constructor(opts: AuthorityStoreOptions) {
    this.#dir = opts.dir;
    this.#crash = opts.crashHook;
    mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    chmodSync(this.#dir, 0o700);
  }

  get dir(): string {
    return this.#dir;
  }

  /** The persisted CA, or null when none was ever committed. Sweeps files no state names. */
  load(): LoadedCa | null {
    const statePath = join(this.#dir, STATE_FILE);
    if (!existsSync(statePath)) {
      this.#sweep(new Set());
      return null;
    }
    let state: CaStateFile;
    try {
      state = JSON.parse(readFileSync(statePath, 'utf8')) as CaStateFile;
    } catch (e) {
      throw corrupt(`${statePath} is not readable JSON: ${(e as Error).message}`, e);
    }
    if (state.version !== 1 || !Array.isArray(state.authorities)) throw corrupt(`${statePath}: unknown format`);
    const authorities = state.authorities.map((a) => this.#loadAuthority(a));
    this.#sweep(referencedFiles(state));
    return { state, authorities };
  }

  /** Writes the new material, then the state (renamed last), then deletes files the state no longer names. */
  commit(state: CaStateFile, material: readonly MaterialFile[]): void {
    for (const f of material) writeFileAtomicSync(join(this.#dir, f.name), f.text, f.secret ? 0o600 : 0o644);
    this.#crash?.('ca-after-material');
    writeFileAtomicSync(join(this.#dir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`, 0o600);
    this.#crash?.('ca-after-state');
    this.#sweep(referencedFiles(state));
  }

  #loadAuthority(a: AuthorityRecord): LoadedAuthority {
    const root = this.#loadPair(a.rootCertFile, a.rootKeyFile);
    const intermediates = a.intermediates.map((i) => this.#loadPair(i.certFile, i.keyFile));
    if (intermediates.length === 0) throw corrupt(`authority ${a.id} has no intermediate`);
    for (const [n, i] of intermediates.entries()) {
      if (!i.cert.checkIssued(root.cert) || !i.cert.verify(root.cert.publicKey)) throw corrupt(`${a.intermediates[n]!.certFile} is not signed by the root of authority ${a.id}`);
    }
    return { record: a, root, intermediates };
  }

  #loadPair(certFile: string, keyFile: string): CertWithKey {
    let cert: X509Certificate;
    let key: ReturnType<typeof keyPairFromPem>;
    try {
      cert = new X509Certificate(readFileSync(join(this.#dir, certFile)));
      key = keyPairFromPem(readFileSync(join(this.#dir, keyFile)));
    } catch (e) {
      throw corrupt(`cannot load ${certFile} / ${keyFile}: ${(e as Error).message}`, e);
    }
    if (!cert.ca) throw corrupt(`${certFile} is not a CA certificate`);
    if (!keyMatchesPublicKey(key.privateKey, cert.publicKey)) throw corrupt(`${keyFile} does not match ${certFile}`);
    return { cert, key };
  }

  #sweep(keep: ReadonlySet<string>): void {
    for (const name of readdirSync(this.#dir)) {
      if (name === STATE_FILE || keep.has(name)) continue;
      if (name.includes(TMP_MARKER) || /\.(crt|key)$/.test(name)) unlinkSync(join(this.#dir, name));
    }
  }
}

function referencedFiles(state: CaStateFile): Set<string> {
  const out = new Set<string>();
  for (const a of state.authorities) {
    out.add(a.rootCertFile).add(a.rootKeyFile);
    for (const i of a.intermediates) out.add(i.certFile).add(i.keyFile);
  }
  return out;
}
