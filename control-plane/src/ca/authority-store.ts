// Persists the CA in <dataDir>/ca: one key and one certificate file per root and intermediate, and
// ca-state.json naming them. New files are written first, the state file is renamed last; files no state
// names (a crash between the two) are swept at load. Keys are 0600 and never leave this directory.
// A directory the process cannot write (a Kubernetes Secret mount) is only read: never written, chmod-ed or swept;
// there, the plug-in CA shape (root-cert.pem, ca-cert.pem, ca-key.pem: an offline root's intermediate) stands in
// for ca-state.json.
import { accessSync, chmodSync, constants, existsSync, mkdirSync, readdirSync, type Stats, statSync, unlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { type Clock, systemClock } from '../../../common/clock.js';
import { TesseraError } from '../../../common/errors.js';
import type { KeyPair } from '../../../common/pki/keys.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import { FileRefused, readSmallFileBytes } from '../../../shared-io/bounded-read.js';
import { keyExposure, type ProcessIdentity, processIdentity } from '../../../shared-io/key-file-exposure.js';
import { errnoReason } from '../../../shared-io/read-named-file.js';
import { TMP_MARKER, writeFileAtomicSync } from './atomic-file.js';
import type { AuthorityRecord, CaStateFile, CertWithKey, LoadedAuthority } from './authority.js';
import { caCertFromPem, corrupt, keyFromPem, loadAuthority, pairFromPem, referencedNames } from './authority-material.js';
import { hasPluginCaFiles, pluginCaState } from './plugin-ca-secret.js';

export const STATE_FILE = 'ca-state.json';
/** The most a CA file (ca-state.json, a certificate chain, a key) may hold: a chain of a few certificates is KiBs. */
const MAX_CA_FILE_BYTES = 1024 * 1024;

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
  /** What a plug-in CA Secret's validity is judged against (default: the system clock). */
  readonly clock?: Clock;
  /** The trust domain a plug-in CA Secret must be for (default: the one its intermediate names). */
  readonly trustDomain?: TrustDomain;
  /**
   * Only look, as a read-only store does, whatever this process may do there: the directory is never created,
   * chmod-ed, swept or written (a running control plane checking whether CA files changed under it would load).
   */
  readonly inspectOnly?: boolean;
}

export interface LoadedCa {
  readonly state: CaStateFile;
  readonly authorities: readonly LoadedAuthority[];
  /** The key of a pending intermediate request (`tessera ca intermediate-csr`), null when none is pending. */
  readonly pendingKey: KeyPair | null;
}

/** Whether this process may write `dir`: false on a read-only mount (EROFS) or without permission (EACCES). */
function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export class AuthorityStore {
  readonly #dir: string;
  readonly #crash: ((p: CrashPoint) => void) | undefined;
  readonly #readOnly: boolean;
  readonly #me: ProcessIdentity;
  readonly #clock: Clock;
  readonly #td: TrustDomain | undefined;

  constructor(opts: AuthorityStoreOptions) {
    this.#dir = opts.dir;
    this.#crash = opts.crashHook;
    this.#clock = opts.clock ?? systemClock;
    this.#td = opts.trustDomain;
    this.#me = processIdentity();
    try {
      if (opts.inspectOnly && !existsSync(this.#dir)) throw corrupt(`${this.#dir} is missing`, undefined, this.#dir);
      if (!existsSync(this.#dir)) mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
      else if (!statSync(this.#dir).isDirectory()) throw corrupt(`${this.#dir} is not a directory`, undefined, this.#dir);
      // Decided by asking, never by trying: a write attempt on a Secret mount is exactly what must not happen.
      this.#readOnly = opts.inspectOnly === true || !writable(this.#dir);
      if (!this.#readOnly && (statSync(this.#dir).mode & 0o777) !== 0o700) chmodSync(this.#dir, 0o700);
    } catch (e) {
      if (e instanceof TesseraError) throw e;
      throw new TesseraError('TESSERA_ERR_CP_DATA_DIR', `CA directory ${this.#dir}: ${errnoReason(e, 'cannot be used')}`, { file: this.#dir }, { cause: e });
    }
  }

  get dir(): string {
    return this.#dir;
  }

  /** True when the directory cannot be written (a mounted Secret): the CA is loaded and never changed. */
  get readOnly(): boolean {
    return this.#readOnly;
  }

  /** The persisted CA, or null when none was ever committed. Sweeps files no state names. */
  load(): LoadedCa | null {
    const statePath = join(this.#dir, STATE_FILE);
    if (!existsSync(statePath)) {
      if (this.#readOnly && hasPluginCaFiles(this.#dir)) {
        const state = pluginCaState(this.#dir, { read: (n) => this.#read(n, undefined, false), readKey: (n) => this.#readKey(n, false) }, this.#clock.nowMs(), this.#td);
        return { state, authorities: state.authorities.map((a) => this.#loadAuthority(a)), pendingKey: null };
      }
      if (this.#readOnly) throw new TesseraError('TESSERA_ERR_CA_READ_ONLY', `${statePath} is missing and ${this.#dir} is read-only, so no CA can be created there (create the Secret from a complete CA directory, or in the plug-in CA shape: docs/kubernetes.md)`, { file: statePath });
      this.#sweep(new Set());
      return null;
    }
    let state: CaStateFile;
    try {
      state = JSON.parse(this.#read(STATE_FILE).toString('utf8')) as CaStateFile;
    } catch (e) {
      if (e instanceof TesseraError) throw e;
      throw corrupt(`${statePath} is not valid JSON: ${(e as Error).message}`, e, statePath);
    }
    if (state === null || typeof state !== 'object' || state.version !== 1 || !Array.isArray(state.authorities)) throw corrupt(`${statePath}: unknown format`, undefined, statePath);
    const authorities = state.authorities.map((a) => this.#loadAuthority(a));
    const pending = state.pendingIntermediate;
    const pendingKey = pending ? this.#loadKey(pending.keyFile) : null;
    this.#sweep(referencedNames(state.authorities, pending));
    return { state, authorities, pendingKey };
  }

  /** Writes the new material, then the state (renamed last), then deletes files the state no longer names. */
  commit(state: CaStateFile, material: readonly MaterialFile[]): void {
    if (this.#readOnly) throw new TesseraError('TESSERA_ERR_CA_READ_ONLY', `${this.#dir} is read-only: change the CA in a writable copy and replace the Secret (docs/kubernetes.md)`, { file: this.#dir });
    for (const f of material) writeFileAtomicSync(join(this.#dir, f.name), f.text, f.secret ? 0o600 : 0o644);
    this.#crash?.('ca-after-material');
    writeFileAtomicSync(join(this.#dir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`, 0o600);
    this.#crash?.('ca-after-state');
    this.#sweep(referencedNames(state.authorities, state.pendingIntermediate));
  }

  #loadAuthority(a: AuthorityRecord): LoadedAuthority {
    const read = { pair: (c: string, k: string) => this.#loadPair(c, k), cert: (c: string) => caCertFromPem(this.#read(c), join(this.#dir, c)) };
    return loadAuthority(a, join(this.#dir, STATE_FILE), read, (name) => join(this.#dir, name));
  }

  #loadPair(certFile: string, keyFile: string): CertWithKey {
    const certPem = this.#read(certFile);
    const keyPem = this.#readKey(keyFile);
    return pairFromPem(certPem, keyPem, { cert: join(this.#dir, certFile), key: join(this.#dir, keyFile) });
  }

  #loadKey(keyFile: string): KeyPair {
    return keyFromPem(this.#readKey(keyFile), join(this.#dir, keyFile));
  }

  /** A key file's PEM, refused when users other than this process's may read it (judged on the descriptor read). */
  #readKey(keyFile: string, named = true): Buffer {
    const keyPath = join(this.#dir, keyFile);
    return this.#read(keyFile, (st) => {
      const exposure = keyExposure(st, this.#me);
      if (exposure) throw new TesseraError('TESSERA_ERR_CA_KEY_EXPOSED', `${keyPath}: ${exposure}; a CA key must be 0600 or 0400 (0440 with the process's group, e.g. a Secret's defaultMode with fsGroup)`, { file: keyPath });
    }, named);
  }

  /**
   * A file ca-state.json names (a plain name in this directory; `named` false: a plug-in Secret's file, which no
   * ca-state.json names): missing or unreadable is coded, naming it.
   */
  #read(name: string, check?: (stat: Stats) => void, named = true): Buffer {
    if (typeof name !== 'string' || name === '' || basename(name) !== name || name.startsWith('.')) throw corrupt(`${join(this.#dir, STATE_FILE)} names "${String(name)}", which is not a file name in ${this.#dir}`);
    const path = join(this.#dir, name);
    try {
      // Bounded and non-blocking: a FIFO or a huge file put in a Secret's place must not hang or fill the start.
      return readSmallFileBytes(path, MAX_CA_FILE_BYTES, check);
    } catch (e) {
      if (e instanceof TesseraError) throw e;
      const namedBy = named && name !== STATE_FILE ? ` (${STATE_FILE} names it)` : '';
      if (e instanceof FileRefused) throw corrupt(`${path}: ${e.message}${namedBy}`, e, path);
      // Unreadable is not damaged: say whose read failed and the usual cause (a Secret file root:root 0400).
      const denied = (e as NodeJS.ErrnoException).code === 'EACCES' ? `; this process (uid ${this.#me.uid}, groups ${[...new Set(this.#me.groups)].join(',')}) cannot read it: on Kubernetes mount the CA Secret with defaultMode 0440 and the pod's fsGroup` : '';
      throw corrupt(`${path}: ${errnoReason(e)}${namedBy}${denied}`, e, path);
    }
  }

  #sweep(keep: ReadonlySet<string>): void {
    if (this.#readOnly) return;
    for (const name of readdirSync(this.#dir)) {
      if (name === STATE_FILE || keep.has(name)) continue;
      if (name.includes(TMP_MARKER) || /\.(crt|key)$/.test(name)) unlinkSync(join(this.#dir, name));
    }
  }
}
