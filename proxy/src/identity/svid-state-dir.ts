// The proxy's SVID kept across restarts (identity.controlPlane.stateDir), as a SPIRE agent keeps its SVID and key in
// its data dir: without it every restart is a new attestation, and a spent join token leaves a restarted sidecar
// never ready (audit 52a F2). One file, <stateDir>/svid.key.pem, holds the private key and the chain (leaf first), so
// the two are replaced together: written whole on every install (0600, created exclusively, flushed, renamed over
// the old one, the directory flushed; the directory itself 0700, and never one others can write to). At start the
// file is used only if it is no link, owner-only and this process's, in a directory only this user can write,
// parses whole, its key matches its leaf, and the chain is an SVID of the proxy's trust domain that verifies under
// the bootstrap bundle (with the kept one, below) now; anything else is a coded error and the proxy attests instead.
// Beside it, as a SPIRE agent keeps its bundle, bundle.<trust domain>.pem holds the trust domain's authorities as the
// control plane last pushed them (written the same way on each change): after a CA rotation the bootstrap file names
// only the retired root, and without the kept one a restart could verify neither its own SVID nor the control plane.
// proxy.lock is held while the proxy runs: one proxy per state dir (a read-only one, unlockable, is not used).
import { X509Certificate } from 'node:crypto';
import { chmod } from 'node:fs/promises';
import { chmodSync, readdirSync, rmSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { TesseraError } from '../../../common/errors.js';
import { chainSizeFault } from '../../../common/pki/chain-size.js';
import { type KeyPair, keyMatchesPublicKey, keyPairFromPem, privateKeyPem } from '../../../common/pki/keys.js';
import { decodePem, encodePem } from '../../../common/pki/pem.js';
import { TrustBundle, TrustBundleSet } from '../../../common/spiffe/trust-bundle.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import { leafSpiffeId, verifyX509Svid } from '../../../common/spiffe/x509-svid.js';
import { FileRefused, readSmallFile } from '../../../shared-io/bounded-read.js';
import { type FileLock, FileLockRefused, lockFile } from '../../../shared-io/process-file-lock.js';
import { beyondOwner, processIdentity } from '../../../shared-io/key-file-exposure.js';
import { makeDirsSync } from '../../../shared-io/make-dirs.js';
import { errnoReason } from '../../../shared-io/read-named-file.js';
import { writeAtomic } from '../../../shared-io/write-atomic.js';
import type { IssuedSvid } from './control-plane-svid-source.js';

/** The file in the state dir: the key first, then the chain. */
export const STATE_FILE = 'svid.key.pem';
/** Held by the running proxy (a kernel lock, process-file-lock.ts): a second proxy on the same dir fails its start. */
export const LOCK_FILE = 'proxy.lock';
/** The kept trust bundle of trust domain `td`: named by it, so a proxy moved to another domain never reads it. */
export const bundleFileName = (td: TrustDomain): string => `bundle.${td.name}.pem`;
/** A key and a chain are a few KiB; anything far larger is not a file this proxy wrote. */
const MAX_BYTES = 1 << 20;

/** What the state dir holds at start. */
export type Persisted =
  /** Nothing yet (a first start, or a dir never written). */
  | { readonly kind: 'none' }
  /**
   * An SVID that was this proxy's, whole and verifying at a time within its life, but not valid now by this host's
   * clock (expired, or not valid yet): a clock off from the control plane's may be the cause (audit 53b F2).
   */
  | { readonly kind: 'stale'; readonly why: string; readonly reason: 'expired' | 'not_yet_valid'; readonly svid: IssuedSvid }
  | { readonly kind: 'svid'; readonly svid: IssuedSvid };

/** What a persisted SVID must be to be used: of this trust domain, verifying under this bundle now. */
export interface PersistedExpect {
  readonly trustDomain: TrustDomain;
  readonly bootstrap: TrustBundle;
  readonly nowMs: number;
}

export class SvidStateDir {
  readonly dir: string;
  readonly file: string;
  /** The serial the file holds (read at start or last written): writing it again is skipped. */
  #stored: string | undefined;
  /** The fingerprints the kept bundle file holds (read or last written): the same set is not written again. */
  #storedBundle: string | undefined;
  /** Writes run one after another; each install's write waits for the one before. */
  #writing: Promise<void> = Promise.resolve();

  constructor(dir: string) {
    this.dir = dir;
    this.file = join(dir, STATE_FILE);
  }

  /**
   * Takes the dir's lock for the life of the process, before anything in it is read: two proxies on one dir would
   * restore each other's SVID and fork its renewals. The dir is made 0700 when missing, and one of its own that only
   * it can write is narrowed to 0700 now, as the first write would (so a dir of its own never counts as read-only).
   * Throws TESSERA_ERR_IDENTITY_STATE_IN_USE when another process holds the lock, and
   * TESSERA_ERR_IDENTITY_STATE_LOCK_FAILED naming the path when anything else stands in the way (at proxy.lock a
   * directory, FIFO, socket or device, a symbolic link, another user's file or one that is no lock file; a state dir
   * that is no directory): without the lock nothing would stop a second proxy (audit 56c F1). Only a dir the proxy
   * cannot write in (a read-only file system, EROFS; a directory it may not create files in, EACCES) gives
   * `readOnly`, the reason: the caller then does without the state dir, as a proxy without one does.
   */
  lock(): { readonly lock?: FileLock; readonly readOnly?: string } {
    try {
      makeDirsSync(this.dir, 0o700);
      const st = statSync(this.dir);
      if (!st.isDirectory()) throw lockFailed(this.dir, 'is not a directory');
      if (!othersCanWrite(st) && (st.mode & 0o777) !== 0o700) chmodSync(this.dir, 0o700);
    } catch (e) {
      if (e instanceof TesseraError) throw e;
      const errno = (e as NodeJS.ErrnoException).code;
      if (errno === 'EROFS' || errno === 'EACCES') return { readOnly: `${this.dir}: ${errnoReason(e, 'failed')}` };
      throw lockFailed(this.dir, errnoReason(e, 'cannot be made'), e);
    }
    try {
      return { lock: lockFile(join(this.dir, LOCK_FILE)) };
    } catch (e) {
      if (!(e instanceof FileLockRefused)) throw e;
      if (e.why === 'held') {
        throw new TesseraError('TESSERA_ERR_IDENTITY_STATE_IN_USE', `${e.file} is locked: another proxy runs with stateDir ${this.dir}; give each proxy a directory of its own`, { file: e.file }, { cause: e });
      }
      if (e.why === 'readonly') return { readOnly: e.message };
      const hint = e.why === 'foreign' ? ': remove it (the proxy never takes over or removes what it did not make)' : '';
      throw lockFailed(e.file, `${e.detail}${hint}`, e);
    }
  }

  /**
   * The SVID the dir holds, checked whole. Throws TESSERA_ERR_IDENTITY_STATE_INVALID naming the file and the fault
   * (unreadable, not owner-only or not this process's, truncated, malformed, key not matching, another trust domain,
   * not verifying under the bootstrap bundle). Temporary files a crash left mid-write are removed first.
   */
  load(expect: PersistedExpect): Persisted {
    this.#sweep();
    let text: string;
    try {
      this.#trustedDir(this.file, 'SVID');
      text = readSmallFile(this.file, MAX_BYTES, (st) => ownerOnly(this.file, st), true);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' };
      throw refused(this.file, e, 'SVID');
    }
    const { key, chain } = parseState(this.file, text);
    const leaf = chain[0]!;
    const claimed = leafSpiffeId(leaf);
    if (!claimed.ok) throw invalid(this.file, `does not hold an X.509-SVID: ${claimed.message}`);
    if (!claimed.id.trustDomain.equals(expect.trustDomain)) {
      throw invalid(this.file, `holds an SVID of trust domain "${claimed.id.trustDomain}", not "${expect.trustDomain}" (the proxy's)`);
    }
    const bundles = new TrustBundleSet([expect.bootstrap]);
    const [fromMs, toMs] = [leaf.validFromDate.getTime(), leaf.validToDate.getTime()];
    const now = verifyX509Svid(chain, bundles, { nowMs: expect.nowMs });
    // Out of its life by this clock: checked whole at a time within it, and if sound, "stale" (the caller decides).
    const timely = now.ok || (now.reason !== 'expired' && now.reason !== 'not_yet_valid');
    const v = timely ? now : verifyX509Svid(chain, bundles, { nowMs: Math.min(Math.max(expect.nowMs, fromMs), toMs) });
    if (!v.ok) throw invalid(this.file, `holds an SVID that does not verify under the bootstrap and kept bundles (${v.reason}): ${v.message}`);
    const serial = leaf.serialNumber.toLowerCase();
    this.#stored = serial;
    // Taken as arrived at its NotBefore (the file cannot say when it did): its renewal point is the usual one, and one
    // already past is due now, not a tenth of the lifetime after this restart (localValidity's floor).
    const svid = { id: v.id, chain, key, bundle: expect.bootstrap, notBeforeMs: fromMs, notAfterMs: toMs, issuedAtMs: fromMs, serial };
    // Expiry is a normal end for a kept SVID (the proxy was down longer than its lifetime), not a fault of the file.
    if (!now.ok) return { kind: 'stale', why: `${now.message} (valid ${leaf.validFromDate.toISOString()} to ${leaf.validToDate.toISOString()})`, reason: now.reason as 'expired' | 'not_yet_valid', svid };
    return { kind: 'svid', svid };
  }

  /**
   * Writes `svid` (after the writes before it); resolves once it is on disk. The serial the file already holds is
   * not written again. Rejects with TESSERA_ERR_IDENTITY_STATE_WRITE_FAILED naming the path and the cause.
   */
  save(svid: Pick<IssuedSvid, 'chain' | 'key' | 'serial'>): Promise<void> {
    return this.#write(this.file, stateText(svid.key, svid.chain), () => this.#stored === svid.serial, () => {
      this.#stored = svid.serial;
    });
  }

  /**
   * The trust domain's bundle kept by an earlier run, undefined when there is none. Throws
   * TESSERA_ERR_IDENTITY_STATE_INVALID naming the file and the fault (not owner-only or not this process's,
   * unreadable, not a bundle of CA certificates); the caller then goes on with the bootstrap bundle alone.
   */
  loadBundle(td: TrustDomain): TrustBundle | undefined {
    const file = join(this.dir, bundleFileName(td));
    let text: string;
    try {
      this.#trustedDir(file, 'trust bundle');
      text = readSmallFile(file, MAX_BYTES, (st) => ownerOnly(file, st, 'trust bundle'), true);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw refused(file, e, 'trust bundle');
    }
    try {
      const bundle = TrustBundle.parse(td, text);
      this.#storedBundle = bundle.fingerprints().join(',');
      return bundle;
    } catch (e) {
      throw invalid(file, `is not a bundle of CA certificates: ${(e as Error).message}`, e, 'trust bundle');
    }
  }

  /** Writes the trust domain's bundle as the control plane pushed it (after the writes before it); the same set is skipped. */
  saveBundle(bundle: TrustBundle): Promise<void> {
    const prints = bundle.fingerprints().join(',');
    return this.#write(join(this.dir, bundleFileName(bundle.trustDomain)), bundle.toPem(), () => this.#storedBundle === prints, () => {
      this.#storedBundle = prints;
    });
  }

  /** One file written whole (0600 in the 0700 dir), after the writes before it; `current()` true skips it. */
  #write(file: string, text: string, current: () => boolean, written: () => void): Promise<void> {
    const run = this.#writing
      .catch(() => {})
      .then(async () => {
        if (current()) return;
        try {
          makeDirsSync(this.dir, 0o700);
          // A dir others can write to (a shared one such as /tmp, one its group can write) or another user's is not
          // narrowed under them: refused.
          const shared = othersCanWrite(statSync(this.dir));
          if (shared) throw new TesseraError('TESSERA_ERR_IDENTITY_STATE_WRITE_FAILED', `cannot write ${file}: ${this.dir} ${shared}: give the proxy a directory of its own, 0700 (or one it makes itself)`, { file });
          // An existing dir of its own too: the key file's name is known, its listing need not be.
          await chmod(this.dir, 0o700);
          await writeAtomic(file, text, 0o600);
        } catch (e) {
          if (e instanceof TesseraError) throw e;
          throw new TesseraError('TESSERA_ERR_IDENTITY_STATE_WRITE_FAILED', `cannot write ${file}: ${errnoReason(e, 'failed')}`, { file }, { cause: e });
        }
        written();
      });
    this.#writing = run;
    return run;
  }

  /** Resolves once the writes asked for so far are done (written or failed: a failure was reported to its caller). */
  settled(): Promise<void> {
    return this.#writing.catch(() => {});
  }

  /**
   * Removes what an interrupted write left (writeAtomic's `.<name>.tmp-*`): each may hold a key. What else the dir
   * holds is the proxy's, all 0600: svid.key.pem, bundle.<td>.pem and proxy.lock. The lock keeps no journal beside
   * it; the 0644 proxy.lock-journal of an earlier version was removed by lockFile when the lock was taken, before
   * this (audit 56c F2). Anything else is left alone: it is not read.
   */
  #sweep(): void {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return; // no dir yet, or unreadable: load() names the fault
    }
    for (const n of names) {
      if (!/^\.(svid\.key|bundle\..+)\.pem\.tmp-/.test(n)) continue;
      try {
        rmSync(join(this.dir, n), { force: true });
      } catch {
        // Not removable (a read-only mount, a directory by that name): harmless beside the file, which is read anyway
        // (audit 53b F3: the throw discarded a good SVID).
      }
    }
  }

  /** The dir the file is read from: only this user may write there, or the file may not be what the proxy wrote. */
  #trustedDir(file: string, kind: Kind): void {
    const shared = othersCanWrite(statSync(this.dir));
    if (shared) throw invalid(file, `is in ${this.dir}, which ${shared}: the proxy keeps its state dir 0700, and does not trust a file others could have put there`, undefined, kind);
  }
}

/** The file's text: the key (PKCS#8), then the chain, leaf first. */
export function stateText(key: KeyPair, chain: readonly X509Certificate[]): string {
  return privateKeyPem(key) + chain.map((c) => encodePem('CERTIFICATE', c.raw)).join('');
}

type Kind = 'SVID' | 'trust bundle';

/** A read that failed as the coded error load() throws: a symbolic link, an unreadable or irregular file. */
function refused(file: string, e: unknown, kind: Kind): TesseraError {
  if (e instanceof TesseraError) return e;
  if ((e as NodeJS.ErrnoException).code === 'ELOOP') return invalid(file, 'is a symbolic link: the proxy writes the file itself, never a link to another', e, kind);
  return invalid(file, e instanceof FileRefused ? `is ${e.message}` : `cannot be read: ${errnoReason(e)}`, e, kind);
}

/**
 * Why others could write in a directory, or null: another owner, or write for every user or for its group, whatever
 * the group (audit 56c F3). Being in the group makes none of its other members this user: group 0 holds every
 * container of an OpenShift pod (key-file-exposure.ts says so of a key's group bits), `users` every login, a pod's
 * fsGroup every container mounting the volume, and no process can tell a group of one from those. The proxy owns
 * the dir and never needs its group to write there. (keyExposure accepts the process's own group for reading a key
 * only because a Kubernetes Secret volume is read through it; nothing reaches a state dir that way.)
 */
function othersCanWrite(st: Stats): string | null {
  if (process.platform === 'win32') return null;
  const me = processIdentity();
  const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
  if (me.uid >= 0 && st.uid !== me.uid) return `is owned by uid ${st.uid}, not this process's (${me.uid})`;
  if (st.mode & 0o002) return `is writable by every user (mode ${mode})`;
  if (st.mode & 0o020) return `is writable by group ${st.gid} (mode ${mode}), whose ${me.groups.includes(st.gid) ? 'other members, though this process is in it,' : 'members'} are other users`;
  return null;
}

/** The state dir's lock cannot be taken, and the start fails: `what` says what is in the way. */
function lockFailed(file: string, what: string, cause?: unknown): TesseraError {
  return new TesseraError('TESSERA_ERR_IDENTITY_STATE_LOCK_FAILED', `cannot lock the state dir: ${file} ${what}; a proxy does not run on a state dir it cannot lock (a second one would not be refused)`, { file }, cause ? { cause } : undefined);
}

function invalid(file: string, what: string, cause?: unknown, kind: Kind = 'SVID'): TesseraError {
  return new TesseraError('TESSERA_ERR_IDENTITY_STATE_INVALID', `the persisted ${kind} ${file} ${what}`, { file }, cause ? { cause } : undefined);
}

/**
 * The proxy wrote it 0600 as itself: any other mode or owner means someone else did, or could read the key (the
 * SVID) or plant an authority (the bundle).
 */
function ownerOnly(file: string, st: Stats, kind: Kind = 'SVID'): void {
  if (process.platform === 'win32') return;
  const wide = beyondOwner(st.mode);
  if (wide) throw invalid(file, `has ${wide}: the proxy writes it 0600, and does not use a ${kind === 'SVID' ? 'key' : 'bundle'} others may read or write`, undefined, kind);
  const me = processIdentity();
  if (me.uid >= 0 && st.uid !== me.uid) throw invalid(file, `is owned by uid ${st.uid}, not this process's (${me.uid})`, undefined, kind);
}

/** The key and the chain of the file's text; a truncated block (a write cut short) or a missing part is refused. */
function parseState(file: string, text: string): { key: KeyPair; chain: X509Certificate[] } {
  let blocks: ReturnType<typeof decodePem>;
  try {
    blocks = decodePem(text);
  } catch (e) {
    throw invalid(file, `is not valid PEM: ${(e as Error).message}`, e);
  }
  const begins = text.match(/-----BEGIN [A-Z0-9 ]+-----/g)?.length ?? 0;
  if (begins !== blocks.length) throw invalid(file, 'holds a truncated PEM block');
  const keys = blocks.filter((b) => b.label.endsWith('PRIVATE KEY'));
  const certs = blocks.filter((b) => b.label === 'CERTIFICATE');
  if (keys.length !== 1) throw invalid(file, `must hold exactly one PRIVATE KEY block (found ${keys.length})`);
  if (certs.length === 0) throw invalid(file, 'holds no CERTIFICATE block');
  const fault = chainSizeFault(certs.map((b) => b.der));
  if (fault) throw invalid(file, fault);
  let key: KeyPair;
  let chain: X509Certificate[];
  try {
    key = keyPairFromPem(encodePem(keys[0]!.label, keys[0]!.der));
    chain = certs.map((b) => new X509Certificate(b.der));
  } catch (e) {
    throw invalid(file, `holds a key or certificate that cannot be loaded: ${(e as Error).message}`, e);
  }
  if (!keyMatchesPublicKey(key.privateKey, chain[0]!.publicKey)) throw invalid(file, 'holds a key that does not match its SVID');
  return { key, chain };
}
