// FileIdentitySource against real files in a temp dir and real fs.watch: initial load, rotation by rewrite and by
// a Kubernetes `..data` symlink swap, half-written files settling, and every refusal keeping the old snapshot.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { systemClock } from '../../../../common/clock.js';
import { TesseraError } from '../../../../common/errors.js';
import { type FileIdentityEvent, FileIdentitySource } from '../../../../proxy/src/identity/file-identity-source.js';
import { IdentityStore } from '../../../../proxy/src/identity/identity-store.js';
import { type IdentityFiles, checkKeyFileMode, loadIdentityFiles } from '../../../../proxy/src/identity/load-identity-files.js';
import { type MintedSvid, TestCa } from '../../../helpers/test-ca.js';
import { until } from '../../../helpers/until.js';

const ID = 'spiffe://example.org/ns/default/sa/web';
const FAST = { pollMs: 100, debounceMs: 20 };

/** Polls a condition with a deadline; fails the test with `what` if it never holds. */
function serialOf(svid: MintedSvid): string {
  return svid.leaf.serialNumber.toLowerCase();
}

let ca: TestCa;
let svid1: MintedSvid;
let svid2: MintedSvid;
beforeAll(async () => {
  ca = await TestCa.create({ trustDomain: 'example.org' });
  svid1 = await ca.mintSvid(ID);
  svid2 = await ca.mintSvid(ID);
});

let dir: string;
let sources: FileIdentitySource[];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-file-id-'));
  sources = [];
});
afterEach(() => {
  for (const s of sources) s.stop();
  rmSync(dir, { recursive: true, force: true });
});

function writeIdentity(into: string, svid: MintedSvid, opts: { keyMode?: number; bundlePem?: string } = {}): IdentityFiles {
  const files = { certFile: join(into, 'cert.pem'), keyFile: join(into, 'key.pem'), bundleFile: join(into, 'bundle.pem') };
  writeFileSync(files.keyFile, svid.keyPem, { mode: 0o600 });
  chmodSync(files.keyFile, opts.keyMode ?? 0o600);
  writeFileSync(files.certFile, svid.chainPem);
  writeFileSync(files.bundleFile, opts.bundlePem ?? ca.bundlePem());
  return files;
}

function makeSource(files: IdentityFiles, settleMs = 1_000, timing: { pollMs: number; debounceMs: number } = FAST) {
  const store = new IdentityStore(systemClock);
  const events: FileIdentityEvent[] = [];
  const source = new FileIdentitySource({ files, store, onEvent: (e) => events.push(e), settleMs, ...timing });
  sources.push(source);
  return { store, events, source };
}

describe('loadIdentityFiles and the key-file mode check', () => {
  test("refuses a key others or another group may read or write; accepts owner-only, and the process's own group (a Secret with fsGroup)", () => {
    const me = { uid: 65532, groups: [65532] };
    expect(() => checkKeyFileMode('/k', { mode: 0o100600, gid: 1234 }, me)).not.toThrow();
    expect(() => checkKeyFileMode('/k', { mode: 0o100400, gid: 1234 }, me)).not.toThrow();
    // What the kubelet makes of a Secret volume in a pod with fsGroup 65532, whatever defaultMode says.
    expect(() => checkKeyFileMode('/k', { mode: 0o100440, gid: 65532 }, me)).not.toThrow();
    expect(() => checkKeyFileMode('/k', { mode: 0o100640, gid: 65532 }, me)).not.toThrow();
    for (const [mode, gid] of [[0o100644, 65532], [0o100640, 1234], [0o100440, 1234], [0o100604, 65532], [0o100620, 1234], [0o100602, 65532]] as const) {
      try {
        checkKeyFileMode('/k', { mode, gid }, me);
        expect.unreachable(`mode ${mode.toString(8)} accepted`);
      } catch (e) {
        expect((e as TesseraError).code).toBe('TESSERA_ERR_IDENTITY_KEY_FILE_PERMISSIONS');
        expect((e as Error).message).toContain(`/k has mode 0${(mode & 0o777).toString(8)}`);
      }
    }
  });

  test('names the file that is missing, truncated or not a bundle', () => {
    const files = writeIdentity(dir, svid1);
    expect(loadIdentityFiles(files).chain[0]!.serialNumber).toBe(svid1.leaf.serialNumber);
    const expectCode = (code: string, file: string) => {
      try {
        loadIdentityFiles(files);
        expect.unreachable('loaded');
      } catch (e) {
        expect(e).toBeInstanceOf(TesseraError);
        expect((e as TesseraError).code).toBe(code);
        expect((e as Error).message).toContain(file);
      }
    };
    rmSync(files.bundleFile);
    expectCode('TESSERA_ERR_IDENTITY_FILE_UNREADABLE', files.bundleFile);
    writeFileSync(files.bundleFile, svid1.chainPem); // leaf + intermediate: the leaf is no CA
    expectCode('TESSERA_ERR_IDENTITY_FILE_MALFORMED', files.bundleFile);
    writeFileSync(files.bundleFile, ca.bundlePem());
    writeFileSync(files.certFile, svid1.chainPem.slice(0, svid1.chainPem.length - 100));
    expectCode('TESSERA_ERR_IDENTITY_FILE_MALFORMED', files.certFile);
    writeFileSync(files.certFile, svid1.chainPem);
    writeFileSync(files.keyFile, 'not a key\n');
    expectCode('TESSERA_ERR_IDENTITY_FILE_MALFORMED', files.keyFile);
  });

  test("a FIFO, a device or a directory in a file's place is refused at once, never read; an oversized file is refused unread", () => {
    const files = writeIdentity(dir, svid1);
    const refused = (file: string, code: string) => {
      const t0 = Date.now();
      try {
        loadIdentityFiles(files);
        expect.unreachable(`loaded with ${file}`);
      } catch (e) {
        expect((e as TesseraError).code, file).toBe(code);
        expect((e as Error).message).toContain(file);
      }
      expect(Date.now() - t0).toBeLessThan(2_000); // not blocked on a FIFO, not reading a device to its end
    };
    for (const which of ['certFile', 'keyFile', 'bundleFile'] as const) {
      const path = files[which];
      const keep = `${path}.keep`;
      renameSync(path, keep);
      execFileSync('mkfifo', ['-m', '600', path]); // renamed into place, as a rotation would
      refused(path, 'TESSERA_ERR_IDENTITY_FILE_UNREADABLE');
      rmSync(path);
      symlinkSync('/dev/zero', path);
      refused(path, 'TESSERA_ERR_IDENTITY_FILE_UNREADABLE');
      rmSync(path);
      mkdirSync(path);
      refused(path, 'TESSERA_ERR_IDENTITY_FILE_UNREADABLE');
      rmSync(path, { recursive: true });
      renameSync(keep, path);
    }
    // A chain repeated to ~150 KB: installed before, then every peer refused the handshake (OpenSSL's 100 KiB).
    writeFileSync(files.certFile, svid1.chainPem.repeat(Math.ceil(150_000 / svid1.chainPem.length)));
    refused(files.certFile, 'TESSERA_ERR_IDENTITY_FILE_MALFORMED');
    writeFileSync(files.certFile, svid1.chainPem);
    // A valid bundle, repeated past 4 MiB: read whole before, though no bundle needs that much.
    const pem = ca.bundlePem();
    writeFileSync(files.bundleFile, pem.repeat(Math.ceil((4 << 20) / pem.length) + 1));
    refused(files.bundleFile, 'TESSERA_ERR_IDENTITY_FILE_MALFORMED');
    writeFileSync(files.bundleFile, pem);
    expect(loadIdentityFiles(files).chain[0]!.serialNumber).toBe(svid1.leaf.serialNumber);
  });
});

describe('FileIdentitySource', () => {
  test('initial load installs the SVID; a bad start throws a TesseraError naming the problem', () => {
    const files = writeIdentity(dir, svid1);
    const { store, source } = makeSource(files);
    const snap = source.loadInitial();
    expect(snap.serial).toBe(serialOf(svid1));
    expect(store.current?.serial).toBe(serialOf(svid1));
    expect(store.current?.id.toString()).toBe(ID);
    expect(store.current?.source).toBe('files');

    writeFileSync(files.keyFile, svid2.keyPem);
    const other = makeSource(files);
    expect(() => other.source.loadInitial()).toThrow(/does not match/);
    expect(other.store.current).toBeUndefined();
  });

  test('rotation by rewriting the three files installs the new serial; rewriting identical content does not', async () => {
    const files = writeIdentity(dir, svid1);
    const { store, events, source } = makeSource(files);
    source.loadInitial();
    source.start();
    writeIdentity(dir, svid1); // same content again: must not make a new generation
    await new Promise((r) => setTimeout(r, 3 * FAST.pollMs));
    expect(store.current?.generation).toBe(1);
    writeIdentity(dir, svid2);
    await until('the new serial in the store', () => store.current?.serial === serialOf(svid2), 5_000, 10);
    expect(store.current?.generation).toBe(2);
    expect(events.filter((e) => e.result !== 'success')).toEqual([]);
    expect(events.at(-1)).toMatchObject({ result: 'success', serial: serialOf(svid2), changed: 'svid' });
  });

  test('each event says what the files changed: the SVID, the trust bundle alone, or both', async () => {
    const other = await TestCa.create({ trustDomain: 'example.org', rootName: 'CN=Other Root, O=Tessera Test' });
    const files = writeIdentity(dir, svid1);
    const { store, events, source } = makeSource(files);
    source.loadInitial();
    source.start();
    writeFileSync(files.bundleFile, ca.bundlePem() + other.bundlePem());
    await until('the new bundle installed', () => store.current?.generation === 2, 5_000, 10);
    writeIdentity(dir, svid2, { bundlePem: ca.bundlePem() });
    await until('the new SVID and bundle installed', () => store.current?.generation === 3, 5_000, 10);
    expect(events.map((e) => [e.result, e.changed])).toEqual([
      ['success', 'bundle'],
      ['success', 'both'],
    ]);
  });

  test("a bundle file that does not load names the bundle as what was refused, a certificate file the SVID's (audit 35a F2)", async () => {
    const files = writeIdentity(dir, svid1);
    const { events, source } = makeSource(files, 200);
    source.loadInitial();
    source.start();
    writeFileSync(files.bundleFile, 'garbage');
    await until('the bundle refused', () => events.length === 1, 5_000, 10);
    writeFileSync(files.bundleFile, ca.bundlePem());
    await new Promise((r) => setTimeout(r, 3 * FAST.pollMs));
    writeFileSync(files.certFile, 'garbage');
    await until('the certificate refused', () => events.length === 2, 5_000, 10);
    expect(events.map((e) => [e.result, e.code, e.changed])).toEqual([
      ['refused', 'TESSERA_ERR_IDENTITY_FILE_MALFORMED', 'bundle'],
      ['refused', 'TESSERA_ERR_IDENTITY_FILE_MALFORMED', 'svid'],
    ]);
  });

  test('rotation by an atomic `..data` symlink swap (Kubernetes secret volume layout)', async () => {
    // dir/cert.pem -> ..data/cert.pem, dir/..data -> ..2026_01_01_00_00_00.1, as the kubelet lays it out.
    const gen1 = join(dir, '..2026_01_01_00_00_00.1');
    mkdirSync(gen1);
    writeIdentity(gen1, svid1);
    symlinkSync('..2026_01_01_00_00_00.1', join(dir, '..data'));
    for (const f of ['cert.pem', 'key.pem', 'bundle.pem']) symlinkSync(join('..data', f), join(dir, f));
    const files = { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem'), bundleFile: join(dir, 'bundle.pem') };
    // No poll within the test: the swap must be seen by fs.watch on the parent directory alone.
    const { store, events, source } = makeSource(files, 1_000, { pollMs: 60_000, debounceMs: 20 });
    expect(source.loadInitial().serial).toBe(serialOf(svid1));
    source.start();

    const gen2 = join(dir, '..2026_01_01_00_10_00.2');
    mkdirSync(gen2);
    writeIdentity(gen2, svid2);
    symlinkSync('..2026_01_01_00_10_00.2', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    rmSync(gen1, { recursive: true });

    await until('the swapped-in serial in the store', () => store.current?.serial === serialOf(svid2), 5_000, 10);
    expect(events.filter((e) => e.result !== 'success')).toEqual([]);
  });

  test('a half-written cert that is then completed is applied, with no refusal', async () => {
    const files = writeIdentity(dir, svid1);
    const { store, events, source } = makeSource(files, 2_000);
    source.loadInitial();
    source.start();
    // cert-manager style: the key first, then the cert, caught half-way through.
    writeFileSync(files.keyFile, svid2.keyPem);
    writeFileSync(files.certFile, svid2.chainPem.slice(0, Math.floor(svid2.chainPem.length / 2)));
    await new Promise((r) => setTimeout(r, 200)); // several debounce periods: the watcher sees the broken state
    expect(store.current?.serial).toBe(serialOf(svid1));
    writeFileSync(files.certFile, svid2.chainPem);
    await until('the completed cert in the store', () => store.current?.serial === serialOf(svid2), 5_000, 10);
    expect(events.filter((e) => e.result !== 'success')).toEqual([]);
  });

  test('a key of another certificate is refused after the settle window; the old snapshot stays', async () => {
    const files = writeIdentity(dir, svid1);
    const { store, events, source } = makeSource(files, 300);
    source.loadInitial();
    source.start();
    const t0 = Date.now();
    writeFileSync(files.certFile, svid2.chainPem); // the key stays svid1's
    await until('an event', () => events.length > 0, 5_000, 10);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    expect(events).toEqual([expect.objectContaining({ result: 'refused', code: 'TESSERA_ERR_IDENTITY_INVALID' })]);
    expect(events[0]!.error).toMatch(/does not match/);
    expect(store.current?.serial).toBe(serialOf(svid1));
    expect(store.current?.generation).toBe(1);

    // Fixing it (the matching key arrives) applies the new identity.
    writeFileSync(files.keyFile, svid2.keyPem);
    await until('the fixed identity in the store', () => store.current?.serial === serialOf(svid2), 5_000, 10);
  });

  test('an expired certificate is refused; the old snapshot stays', async () => {
    const files = writeIdentity(dir, svid1);
    const { store, events, source } = makeSource(files, 300);
    source.loadInitial();
    source.start();
    const expired = await ca.mintSvid(ID, { notBefore: new Date(Date.now() - 30 * 60_000), notAfter: new Date(Date.now() - 60_000) });
    writeIdentity(dir, expired);
    await until('an event', () => events.length > 0, 5_000, 10);
    expect(events[0]).toMatchObject({ result: 'refused', code: 'TESSERA_ERR_IDENTITY_INVALID' });
    expect(events[0]!.error).toMatch(/expired/);
    expect(store.current?.serial).toBe(serialOf(svid1));
  });

  test('a certificate not valid yet is refused, then installed when it becomes valid, with no file event in between', async () => {
    const files = writeIdentity(dir, svid1);
    const { store, events, source } = makeSource(files, 200);
    source.loadInitial();
    source.start();
    // X.509 times are whole seconds: valid from the start of the second after next.
    const early = await ca.mintSvid(ID, { notBefore: new Date(Math.ceil(Date.now() / 1_000) * 1_000 + 2_000), notAfter: new Date(Date.now() + 3_600_000) });
    writeIdentity(dir, early);
    await until('the refusal', () => events.length > 0, 5_000, 10);
    expect(events[0]).toMatchObject({ result: 'refused', code: 'TESSERA_ERR_IDENTITY_INVALID' });
    expect(events[0]!.error).toMatch(/not_yet_valid/);
    expect(store.current?.serial).toBe(serialOf(svid1));
    await until('the early SVID installed once valid', () => store.current?.serial === serialOf(early), 8_000, 20);
    expect(events.at(-1)).toMatchObject({ result: 'success', serial: serialOf(early) });
  });

  test('a key file of mode 0644 is refused with its own code, at start and on reload', async () => {
    const files = writeIdentity(dir, svid1);
    const { store, events, source } = makeSource(files, 300);
    source.loadInitial();
    source.start();
    writeIdentity(dir, svid2, { keyMode: 0o644 });
    await until('an event', () => events.length > 0, 5_000, 10);
    expect(events).toEqual([expect.objectContaining({ result: 'refused', code: 'TESSERA_ERR_IDENTITY_KEY_FILE_PERMISSIONS' })]);
    expect(events[0]!.error).toContain(files.keyFile);
    expect(store.current?.serial).toBe(serialOf(svid1));

    // chmod alone (same content, same mtime) is noticed, and the now owner-only key is applied.
    chmodSync(files.keyFile, 0o600);
    await until('the identity applied after chmod 600', () => store.current?.serial === serialOf(svid2), 5_000, 10);

    chmodSync(files.keyFile, 0o644);
    const fresh = makeSource(files);
    expect(() => fresh.source.loadInitial()).toThrow(expect.objectContaining({ code: 'TESSERA_ERR_IDENTITY_KEY_FILE_PERMISSIONS' }));
  });

  test('started without an initial load, it installs the files as soon as they are valid', async () => {
    const files = { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem'), bundleFile: join(dir, 'bundle.pem') };
    const { store, source } = makeSource(files, 5_000);
    source.start();
    expect(store.current).toBeUndefined();
    writeIdentity(dir, svid1);
    await until('the identity in the store', () => store.current?.serial === serialOf(svid1), 5_000, 10);
  });
});
