// The SVID a proxy keeps across restarts (identity.controlPlane.stateDir, audit 52a F2): written whole (the dir
// 0700, the file 0600, key and chain together), read back only when owner-only, whole, matching, of the proxy's trust
// domain and verifying under the bootstrap bundle now; an expired one is "stale", anything else a coded error.
import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { generateKeyPair } from '../../../../common/pki/keys.js';
import { TrustBundle } from '../../../../common/spiffe/trust-bundle.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { STATE_FILE, type Persisted, SvidStateDir, stateText } from '../../../../proxy/src/identity/svid-state-dir.js';
import { canMount } from '../../../helpers/secret-mount.js';
import { type MintedSvid, TestCa } from '../../../helpers/test-ca.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';

const ID = 'spiffe://example.org/ns/default/sa/api';
const T0 = Date.UTC(2030, 0, 1);
const TD = TrustDomain.parse('example.org');
const tmp = tempDirPerTest();

let ca: TestCa;
let bootstrap: TrustBundle;
let svid: MintedSvid;
const serialOf = (m: MintedSvid) => m.leaf.serialNumber.toLowerCase();
const expectAt = (nowMs = T0) => ({ trustDomain: TD, bootstrap, nowMs });

/** The code a load fails with (undefined when it does not fail). */
function loadCode(dir: SvidStateDir, nowMs = T0): string | undefined {
  try {
    dir.load(expectAt(nowMs));
    return undefined;
  } catch (e) {
    return isTesseraError(e) ? e.code : String(e);
  }
}

beforeEach(async () => {
  ca = await TestCa.create({ nowMs: T0 });
  bootstrap = TrustBundle.parse(TD, ca.bundlePem());
  svid = await ca.mintSvid(ID);
});

describe('SvidStateDir', () => {
  test('a write makes the dir 0700 and the file 0600, and a load gives back the same SVID and key', async () => {
    const state = new SvidStateDir(join(tmp.dir, 'state', 'api'));
    await state.save({ chain: svid.chain, key: svid.key, serial: serialOf(svid) });
    expect((await stat(state.dir)).mode & 0o777).toBe(0o700);
    expect((await stat(state.file)).mode & 0o777).toBe(0o600);
    expect(await readdir(state.dir)).toEqual([STATE_FILE]);
    const back = new SvidStateDir(state.dir).load(expectAt()) as Extract<Persisted, { kind: 'svid' }>;
    expect(back.kind).toBe('svid');
    expect(back.svid.serial).toBe(serialOf(svid));
    expect(back.svid.id.toString()).toBe(ID);
    expect(back.svid.chain.map((c) => c.fingerprint256)).toEqual(svid.chain.map((c) => c.fingerprint256));
    expect(back.svid.key.privateKey.export({ type: 'pkcs8', format: 'pem' })).toBe(svid.keyPem);
    expect(back.svid.bundle).toBe(bootstrap);
  });

  test('an existing dir with a wider mode is narrowed to 0700; each install replaces the file whole', async () => {
    const dir = join(tmp.dir, 'wide');
    await mkdir(dir, { mode: 0o755 });
    await chmod(dir, 0o755);
    const state = new SvidStateDir(dir);
    await state.save({ chain: svid.chain, key: svid.key, serial: serialOf(svid) });
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    const next = await ca.mintSvid(ID);
    await Promise.all([state.save({ chain: svid.chain, key: svid.key, serial: serialOf(svid) }), state.save({ chain: next.chain, key: next.key, serial: serialOf(next) })]);
    expect(await readFile(state.file, 'utf8')).toBe(stateText(next.key, next.chain));
    expect(await readdir(dir)).toEqual([STATE_FILE]);
  });

  test('nothing there is "none"; an expired or not yet valid SVID is "stale", not an error', async () => {
    const state = new SvidStateDir(join(tmp.dir, 'never-written'));
    expect(state.load(expectAt())).toEqual({ kind: 'none' });
    await state.save({ chain: svid.chain, key: svid.key, serial: serialOf(svid) });
    expect(state.load(expectAt(svid.leaf.validToDate.getTime() + 1)).kind).toBe('stale');
    expect(state.load(expectAt(svid.leaf.validFromDate.getTime() - 1)).kind).toBe('stale');
  });

  test('a file cut short, empty, without its key or chain, or with a key of another SVID: TESSERA_ERR_IDENTITY_STATE_INVALID', async () => {
    const state = new SvidStateDir(tmp.dir);
    const whole = stateText(svid.key, svid.chain);
    const other = generateKeyPair();
    const variants: Record<string, string> = {
      'cut in the chain': whole.slice(0, whole.length - 200),
      'cut in the key': whole.slice(0, 100),
      empty: '',
      'no key': svid.chainPem,
      'no chain': svid.keyPem,
      'another key': stateText(other, svid.chain),
      'two keys': svid.keyPem + whole,
      garbage: '-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n',
    };
    for (const [name, text] of Object.entries(variants)) {
      await writeFile(state.file, text, { mode: 0o600 });
      expect(loadCode(state), name).toBe('TESSERA_ERR_IDENTITY_STATE_INVALID');
    }
  });

  test('a file others may read, or not verifying under the bootstrap bundle, or of another trust domain: refused', async () => {
    const state = new SvidStateDir(tmp.dir);
    await state.save({ chain: svid.chain, key: svid.key, serial: serialOf(svid) });
    await chmod(state.file, 0o644);
    expect(loadCode(state)).toBe('TESSERA_ERR_IDENTITY_STATE_INVALID');
    // Another CA of the same trust domain (a data dir started afresh): does not chain to the bootstrap bundle.
    const stranger = await (await TestCa.create({ nowMs: T0 })).mintSvid(ID);
    await writeFile(state.file, stateText(stranger.key, stranger.chain), { mode: 0o600 });
    await chmod(state.file, 0o600);
    expect(loadCode(state)).toBe('TESSERA_ERR_IDENTITY_STATE_INVALID');
    const foreign = await (await TestCa.create({ nowMs: T0, trustDomain: 'other.example' })).mintSvid('spiffe://other.example/ns/default/sa/api');
    await writeFile(state.file, stateText(foreign.key, foreign.chain), { mode: 0o600 });
    expect(loadCode(state)).toBe('TESSERA_ERR_IDENTITY_STATE_INVALID');
  });

  test('a write a crash left half-done is removed at load; the file itself is unchanged', async () => {
    const state = new SvidStateDir(tmp.dir);
    await state.save({ chain: svid.chain, key: svid.key, serial: serialOf(svid) });
    const left = join(tmp.dir, `.${STATE_FILE}.tmp-123-abcd`);
    await writeFile(left, svid.keyPem, { mode: 0o600 });
    expect(state.load(expectAt()).kind).toBe('svid');
    expect(await readdir(tmp.dir)).toEqual([STATE_FILE]);
  });

  test('a leftover temporary name that cannot be removed (a directory) does not cost the kept SVID (audit 53b F3)', async () => {
    const state = new SvidStateDir(tmp.dir);
    await state.save({ chain: svid.chain, key: svid.key, serial: serialOf(svid) });
    const stuck = join(tmp.dir, `.${STATE_FILE}.tmp-1-dead`);
    await mkdir(stuck);
    await writeFile(join(stuck, 'x'), 'x');
    expect(state.load(expectAt()).kind).toBe('svid');
  });

  test('a state file that is a symbolic link (to another proxy\'s kept SVID, say) is refused, not followed (audit 53b F4)', async () => {
    const other = new SvidStateDir(join(tmp.dir, 'other'));
    await other.save({ chain: svid.chain, key: svid.key, serial: serialOf(svid) });
    const mine = join(tmp.dir, 'mine');
    await mkdir(mine, { mode: 0o700 });
    await symlink(other.file, join(mine, STATE_FILE));
    const state = new SvidStateDir(mine);
    expect(loadCode(state)).toBe('TESSERA_ERR_IDENTITY_STATE_INVALID');
    expect(() => state.load(expectAt())).toThrow(/symbolic link/);
  });

  test('a state dir others can write to is refused at load, and never narrowed or written into (audit 53b F4)', async () => {
    const state = new SvidStateDir(join(tmp.dir, 'kept'));
    await state.save({ chain: svid.chain, key: svid.key, serial: serialOf(svid) });
    for (const mode of [0o777, 0o1777, 0o703]) {
      await chmod(state.dir, mode);
      expect(loadCode(state)).toBe('TESSERA_ERR_IDENTITY_STATE_INVALID');
      expect(() => state.load(expectAt())).toThrow(/writable by/);
      const next = await ca.mintSvid(ID);
      const err = await state.save({ chain: next.chain, key: next.key, serial: serialOf(next) }).catch((e: unknown) => e);
      expect(isTesseraError(err, 'TESSERA_ERR_IDENTITY_STATE_WRITE_FAILED')).toBe(true);
      expect((err as Error).message).toMatch(/writable by .*give the proxy a directory of its own/);
      expect((await stat(state.dir)).mode & 0o7777).toBe(mode);
    }
  });

  test('a state dir its group can write to is refused alike, though the process is in that group: never narrowed (at lock time either) or written into (audit 56c F3)', async () => {
    const state = new SvidStateDir(join(tmp.dir, 'group'));
    await state.save({ chain: svid.chain, key: svid.key, serial: serialOf(svid) });
    // The process's own group (gid 0 when run as root, as every OpenShift container is; `users`; a shared fsGroup).
    const gid = process.getgid!();
    await chown(state.dir, process.getuid!(), gid);
    for (const mode of [0o770, 0o775, 0o730, 0o2770]) {
      await chmod(state.dir, mode);
      expect(loadCode(state)).toBe('TESSERA_ERR_IDENTITY_STATE_INVALID');
      expect(() => state.load(expectAt())).toThrow(new RegExp(`is writable by group ${gid} .*, whose other members, though this process is in it, are other users`));
      // Locked (so a second proxy is still refused) but not narrowed at lock time either.
      const taken = new SvidStateDir(state.dir).lock();
      taken.lock!.release();
      const next = await ca.mintSvid(ID);
      const err = await state.save({ chain: next.chain, key: next.key, serial: serialOf(next) }).catch((e: unknown) => e);
      expect(isTesseraError(err, 'TESSERA_ERR_IDENTITY_STATE_WRITE_FAILED')).toBe(true);
      expect((err as Error).message).toMatch(/writable by group .*give the proxy a directory of its own, 0700/);
      expect((await stat(state.dir)).mode & 0o7777).toBe(mode);
      expect(await readFile(state.file, 'utf8')).toBe(stateText(svid.key, svid.chain));
    }
  });

  test('the dir is locked for one proxy at a time: a second taker is TESSERA_ERR_IDENTITY_STATE_IN_USE until the first lets go', async () => {
    const dir = join(tmp.dir, 'locked');
    const first = new SvidStateDir(dir).lock();
    expect(first.lock).toBeDefined();
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    let err: unknown;
    try {
      new SvidStateDir(dir).lock();
    } catch (e) {
      err = e;
    }
    expect(isTesseraError(err, 'TESSERA_ERR_IDENTITY_STATE_IN_USE')).toBe(true);
    first.lock!.release();
    const again = new SvidStateDir(dir).lock();
    expect(again.lock).toBeDefined();
    again.lock!.release();
  });

  test('what is in the lock\'s way fails the start with TESSERA_ERR_IDENTITY_STATE_LOCK_FAILED naming it, for every taker (audit 56c F1)', async () => {
    const elsewhere = join(tmp.dir, 'elsewhere.lock');
    await writeFile(elsewhere, '', { mode: 0o600 });
    const cases: [string, (dir: string) => Promise<unknown>, RegExp][] = [
      ['text', (d) => writeFile(join(d, 'proxy.lock'), 'left here by something else\n'.repeat(20), { mode: 0o600 }), /is not a lock file.*remove it/],
      ['directory', (d) => mkdir(join(d, 'proxy.lock')), /is a directory, not a lock file.*remove it/],
      ['fifo', async (d) => execFileSync('mkfifo', [join(d, 'proxy.lock')]), /is a FIFO, not a lock file.*remove it/],
      ['symlink', (d) => symlink(elsewhere, join(d, 'proxy.lock')), /is a symbolic link.*remove it/],
    ];
    for (const [name, make, reason] of cases) {
      const dir = join(tmp.dir, name);
      await mkdir(dir, { mode: 0o700 });
      await make(dir);
      for (let i = 0; i < 2; i++) {
        let err: unknown;
        try {
          new SvidStateDir(dir).lock();
        } catch (e) {
          err = e;
        }
        expect(isTesseraError(err, 'TESSERA_ERR_IDENTITY_STATE_LOCK_FAILED'), `${name}: ${String(err)}`).toBe(true);
        expect((err as Error).message).toContain(join(dir, 'proxy.lock'));
        expect((err as Error).message).toMatch(reason);
      }
    }
    // A state dir that is a file: the same, naming it.
    await writeFile(join(tmp.dir, 'plain-file'), 'x');
    expect(() => new SvidStateDir(join(tmp.dir, 'plain-file')).lock()).toThrow(/plain-file is not a directory/);
  });

  test('a dir of its own that it may not write in is narrowed to 0700 and locked, not taken for a read-only one', async () => {
    const dir = join(tmp.dir, 'narrow');
    await mkdir(dir);
    await chmod(dir, 0o500);
    const taken = new SvidStateDir(dir).lock();
    try {
      expect(taken.lock).toBeDefined();
      expect((await stat(dir)).mode & 0o777).toBe(0o700);
    } finally {
      taken.lock?.release();
    }
  });

  test.skipIf(!canMount())('a read-only state dir (a read-only mount, with a kept SVID and lock file) is said to be read-only, not locked', async () => {
    const src = join(tmp.dir, 'src');
    const kept = new SvidStateDir(src);
    kept.lock().lock!.release();
    await kept.save({ chain: svid.chain, key: svid.key, serial: serialOf(svid) });
    const dst = join(tmp.dir, 'ro');
    await mkdir(dst);
    execFileSync('mount', ['--bind', '-o', 'ro', src, dst], { stdio: 'ignore' });
    try {
      for (const dir of [dst, join(dst, 'missing')]) {
        const taken = new SvidStateDir(dir).lock();
        expect(taken.lock).toBeUndefined();
        expect(taken.readOnly).toMatch(/read-only file system \(EROFS\)/);
      }
    } finally {
      execFileSync('umount', [dst], { stdio: 'ignore' });
    }
  });

  test('a write that cannot be made is TESSERA_ERR_IDENTITY_STATE_WRITE_FAILED naming the path', async () => {
    const blocker = join(tmp.dir, 'a-file');
    await writeFile(blocker, 'x');
    const state = new SvidStateDir(join(blocker, 'state'));
    const err = await state.save({ chain: svid.chain, key: svid.key, serial: serialOf(svid) }).catch((e: unknown) => e);
    expect(isTesseraError(err, 'TESSERA_ERR_IDENTITY_STATE_WRITE_FAILED')).toBe(true);
    expect((err as Error).message).toContain(blocker);
    // The key is never in the message.
    expect((err as Error).message).not.toContain('PRIVATE KEY');
  });

  describe('the kept trust bundle', () => {
    const bundleFile = (dir: string) => join(dir, 'bundle.example.org.pem');

    test('written 0600 beside the SVID, named by its trust domain, read back with the same authorities; the same set is not written again', async () => {
      const state = new SvidStateDir(join(tmp.dir, 'kept'));
      expect(state.loadBundle(TD)).toBeUndefined();
      const next = await TestCa.create({ nowMs: T0 });
      const both = new TrustBundle(TD, [...bootstrap.authorities, ...TrustBundle.parse(TD, next.bundlePem()).authorities]);
      await state.saveBundle(both);
      expect((await stat(state.dir)).mode & 0o777).toBe(0o700);
      expect((await stat(bundleFile(state.dir))).mode & 0o777).toBe(0o600);
      const first = await stat(bundleFile(state.dir));
      await state.saveBundle(TrustBundle.parse(TD, both.toPem()));
      expect((await stat(bundleFile(state.dir))).mtimeMs).toBe(first.mtimeMs);
      expect(new SvidStateDir(state.dir).loadBundle(TD)!.fingerprints()).toEqual(both.fingerprints());
      // Another trust domain's proxy in the same dir reads nothing of it.
      expect(new SvidStateDir(state.dir).loadBundle(TrustDomain.parse('other.example'))).toBeUndefined();
    });

    test('an SVID of a CA only the kept bundle names verifies once the kept bundle joins the bootstrap one (a CA rotated while the proxy ran)', async () => {
      const state = new SvidStateDir(tmp.dir);
      const rotated = await TestCa.create({ nowMs: T0 });
      const later = await rotated.mintSvid(ID);
      await state.save({ chain: later.chain, key: later.key, serial: serialOf(later) });
      expect(loadCode(state)).toBe('TESSERA_ERR_IDENTITY_STATE_INVALID');
      await state.saveBundle(TrustBundle.parse(TD, rotated.bundlePem()));
      const kept = state.loadBundle(TD)!;
      const joined = new TrustBundle(TD, [...bootstrap.authorities, ...kept.authorities]);
      expect(state.load({ trustDomain: TD, bootstrap: joined, nowMs: T0 }).kind).toBe('svid');
    });

    test('a kept bundle others could write, or that is not a bundle, is TESSERA_ERR_IDENTITY_STATE_INVALID naming the file', async () => {
      const state = new SvidStateDir(tmp.dir);
      await state.saveBundle(bootstrap);
      await chmod(bundleFile(tmp.dir), 0o666);
      const codeOf = () => {
        try {
          state.loadBundle(TD);
          return undefined;
        } catch (e) {
          expect((e as Error).message).toContain(bundleFile(tmp.dir));
          return isTesseraError(e) ? e.code : String(e);
        }
      };
      expect(codeOf()).toBe('TESSERA_ERR_IDENTITY_STATE_INVALID');
      await chmod(bundleFile(tmp.dir), 0o600);
      expect(codeOf()).toBeUndefined();
      // A leaf (not a CA) where authorities belong, and text that is no PEM at all.
      await writeFile(bundleFile(tmp.dir), svid.chain.map((c) => c.toString()).join(''), { mode: 0o600 });
      expect(codeOf()).toBe('TESSERA_ERR_IDENTITY_STATE_INVALID');
      await writeFile(bundleFile(tmp.dir), 'not a bundle', { mode: 0o600 });
      expect(codeOf()).toBe('TESSERA_ERR_IDENTITY_STATE_INVALID');
    });
  });
});
