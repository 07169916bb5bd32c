// The CA's files on disk: keys 0600 and certificates 0644 in a 0700 directory, material written before the state
// that names it, a commit interrupted between the two leaves the previous CA loadable (the orphans swept), and
// every kind of damage to the directory is refused with TESSERA_ERR_CA_STATE_CORRUPT naming the file.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import type { CaStateFile } from '../../../../control-plane/src/ca/authority.js';
import { AuthorityStore, type CrashPoint, STATE_FILE } from '../../../../control-plane/src/ca/authority-store.js';
import { openTestCa, type TestCaParts } from '../../../helpers/control-plane-parts.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { makeTempDir } from '../../../helpers/run.js';

function refusal(fn: () => unknown): { code: string; message: string; file: unknown } {
  try {
    fn();
  } catch (e) {
    if (isTesseraError(e)) return { code: e.code, message: e.message, file: e.details['file'] };
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('AuthorityStore', () => {
  let dir: string;
  let caDir: string;
  let cleanup: () => Promise<void>;
  let parts: TestCaParts;
  let state: CaStateFile;
  beforeEach(async () => {
    ({ dir, cleanup } = await makeTempDir());
    caDir = join(dir, 'ca');
    parts = await openTestCa(dir, new FakeTime(Date.now()));
    await parts.store.close();
    state = JSON.parse(readFileSync(join(caDir, STATE_FILE), 'utf8')) as CaStateFile;
  });
  afterEach(async () => cleanup());

  const load = () => new AuthorityStore({ dir: caDir }).load();
  const authority = () => state.authorities[0]!;
  const writeState = (s: unknown) => writeFileSync(join(caDir, STATE_FILE), JSON.stringify(s));

  test('keys are 0600, certificates 0644, the directory 0700; a load returns what was committed', () => {
    expect(statSync(caDir).mode & 0o777).toBe(0o700);
    const a = authority();
    expect(statSync(join(caDir, a.rootKeyFile!)).mode & 0o777).toBe(0o600);
    expect(statSync(join(caDir, a.intermediates[0]!.keyFile)).mode & 0o777).toBe(0o600);
    expect(statSync(join(caDir, a.rootCertFile)).mode & 0o777).toBe(0o644);
    expect(statSync(join(caDir, STATE_FILE)).mode & 0o777).toBe(0o600);
    const loaded = load()!;
    expect(loaded.state).toEqual(state);
    expect(loaded.authorities[0]!.root.cert.fingerprint256).toBe(parts.ca.current().authorities[0]!.root.cert.fingerprint256);
  });

  test('a directory left group/world-open is tightened back to 0700 when opened', () => {
    chmodSync(caDir, 0o755);
    new AuthorityStore({ dir: caDir });
    expect(statSync(caDir).mode & 0o777).toBe(0o700);
  });

  test('a commit cut after its material keeps the previous state; the orphaned files are swept at the next load', () => {
    const store = new AuthorityStore({
      dir: caDir,
      crashHook: (p: CrashPoint) => {
        if (p === 'ca-after-material') throw new Error('killed');
      },
    });
    const next: CaStateFile = { ...state, authorities: [{ ...authority(), rootCertFile: 'zz-root.crt' }] };
    expect(() => store.commit(next, [{ name: 'zz-root.crt', text: 'new', secret: false }, { name: 'zz-root.key', text: 'secret', secret: true }])).toThrow('killed');
    expect(existsSync(join(caDir, 'zz-root.key'))).toBe(true);
    expect(JSON.parse(readFileSync(join(caDir, STATE_FILE), 'utf8'))).toEqual(state);
    // A temporary file a crash left mid-write, and a stray file that is neither key nor certificate.
    writeFileSync(join(caDir, 'ca-state.json.tmp-abc123'), '{');
    writeFileSync(join(caDir, 'README'), 'kept');

    expect(load()!.state).toEqual(state);
    const names = readdirSync(caDir);
    expect(names).not.toContain('zz-root.key');
    expect(names).not.toContain('zz-root.crt');
    expect(names).not.toContain('ca-state.json.tmp-abc123');
    expect(names).toContain('README');
    expect(names).toContain(authority().rootKeyFile);
  });

  test('a commit cut after its state is already the new CA', () => {
    const seen: CrashPoint[] = [];
    const store = new AuthorityStore({ dir: caDir, crashHook: (p) => seen.push(p) });
    const next: CaStateFile = { ...state, removed: [{ id: 'gone', removedAtMs: 1 }] };
    store.commit(next, []);
    expect(seen).toEqual(['ca-after-material', 'ca-after-state']);
    expect(load()!.state).toEqual(next);
  });

  test('an empty directory has no CA, and stray key files in it are swept', () => {
    const empty = join(dir, 'empty');
    const store = new AuthorityStore({ dir: empty });
    writeFileSync(join(empty, 'old.key'), 'x');
    expect(store.load()).toBeNull();
    expect(readdirSync(empty)).toEqual([]);
  });

  test('an empty or missing file the state names is refused, naming the file', () => {
    const key = join(caDir, authority().intermediates[0]!.keyFile);
    writeFileSync(key, '', { mode: 0o600 });
    const r1 = refusal(load);
    expect(r1.code).toBe('TESSERA_ERR_CA_STATE_CORRUPT');
    expect(r1.file).toBe(key);
    writeState({ ...state, authorities: [{ ...authority(), rootCertFile: 'missing.crt' }] });
    const r2 = refusal(load);
    expect(r2).toMatchObject({ code: 'TESSERA_ERR_CA_STATE_CORRUPT', file: join(caDir, 'missing.crt') });
    expect(r2.message).toContain('ca-state.json names it');
  });

  test.each([
    ['../escape.crt'],
    ['.hidden.crt'],
    [''],
  ])('a state naming %j (not a plain file name here) is refused', (name) => {
    writeState({ ...state, authorities: [{ ...authority(), rootCertFile: name }] });
    expect(refusal(load).code).toBe('TESSERA_ERR_CA_STATE_CORRUPT');
  });

  test('a key that does not match its certificate, and an intermediate not signed by its root, are refused', () => {
    const a = authority();
    const swapped = { ...a, rootKeyFile: a.intermediates[0]!.keyFile };
    writeState({ ...state, authorities: [swapped] });
    expect(refusal(load)).toMatchObject({ code: 'TESSERA_ERR_CA_STATE_CORRUPT', file: join(caDir, a.intermediates[0]!.keyFile) });
    // Root and intermediate swapped: the "root" did not sign the "intermediate".
    const crossed = { ...a, rootCertFile: a.intermediates[0]!.certFile, rootKeyFile: a.intermediates[0]!.keyFile, intermediates: [{ ...a.intermediates[0]!, certFile: a.rootCertFile, keyFile: a.rootKeyFile }] };
    writeState({ ...state, authorities: [crossed] });
    expect(refusal(load).message).toContain('is not signed by the root');
  });

  test('a state file that is not JSON, or of an unknown version, is refused', () => {
    writeFileSync(join(caDir, STATE_FILE), '{"version": 1, "authorities": [');
    expect(refusal(load).message).toContain('is not valid JSON');
    writeState({ ...state, version: 2 });
    expect(refusal(load).message).toContain('unknown format');
  });

  test('a CA key readable by others is refused with TESSERA_ERR_CA_KEY_EXPOSED', () => {
    const key = join(caDir, authority().rootKeyFile!);
    chmodSync(key, 0o644);
    expect(refusal(load)).toMatchObject({ code: 'TESSERA_ERR_CA_KEY_EXPOSED', file: key });
  });

  test('a FIFO in a key file\'s place, and a state file over 1 MiB, are refused without blocking or reading them whole', () => {
    const key = join(caDir, authority().intermediates[0]!.keyFile);
    unlinkSync(key);
    execFileSync('mkfifo', ['-m', '0600', key]);
    expect(refusal(load)).toMatchObject({ code: 'TESSERA_ERR_CA_STATE_CORRUPT', file: key });
    expect(refusal(load).message).toContain('not a regular file');
    unlinkSync(key);
    writeFileSync(join(caDir, STATE_FILE), JSON.stringify(state) + ' '.repeat(1024 * 1024));
    const big = refusal(load);
    expect(big).toMatchObject({ code: 'TESSERA_ERR_CA_STATE_CORRUPT', file: join(caDir, STATE_FILE) });
    expect(big.message).toContain('the most it may be');
  });

  test('a CA path that is a file is refused', () => {
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, 'x');
    expect(refusal(() => new AuthorityStore({ dir: file })).code).toBe('TESSERA_ERR_CA_STATE_CORRUPT');
  });
});
