// The one-proxy lock of a state dir against what may be at <stateDir>/proxy.lock (audit 56c F1), with a real control
// plane and real `tessera proxy` processes started two at a time on one stateDir: they must never both become ready.
// Something that is no lock file of the proxy user's (text, a directory, a FIFO, a symbolic link, another user's
// file) fails both starts with TESSERA_ERR_IDENTITY_STATE_LOCK_FAILED naming it, before either attests; it was a
// "(read-only?)" warning, and the second proxy restored the first one's SVID and key. A stateDir that really is
// read-only (a read-only mount holding a kept SVID) cannot be locked: each proxy warns and runs without it, attesting
// with its own evidence, so no two share an SVID (they both restored the kept one before). And the dir holds only
// 0600 files after a start and a restart: no 0644 SQLite journal beside the lock (F2).
import { execFileSync } from 'node:child_process';
import { chown, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { SupervisedProcess } from '../../shared-io/process-supervisor.js';
import { createJoinToken, type RunningControlPlane, startControlPlaneProcess, TD, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { readListeningLine, startProxyProcess } from '../helpers/proxy-process.js';
import { startTestProcess } from '../helpers/ready-process.js';
import { makeTempDir, TESSERA_BIN } from '../helpers/run.js';
import { canMount } from '../helpers/secret-mount.js';
import { until } from '../helpers/until.js';

const WEB = `spiffe://${TD}/ns/default/sa/web`;
const READY = 'tessera proxy: ready';

let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane;
const started: SupervisedProcess[] = [];

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const cpDir = join(dir, 'cp');
  cp = await startControlPlaneProcess(cpDir, await writeControlPlaneConfig(cpDir));
}, 60_000);

afterAll(async () => {
  for (const p of started) await p.stop({ graceMs: 5_000 });
  await cp?.stop();
  await cleanup?.();
});

/** A proxy config `<name>.yaml` on `stateDir`, with a fresh join token of its own (ports 0). */
async function proxyConfig(name: string, stateDir: string): Promise<string> {
  await writeFile(join(dir, `${name}.token`), await createJoinToken(cp.dataDir, WEB, 600_000), { mode: 0o600 });
  const file = join(dir, `${name}.yaml`);
  await writeFile(
    file,
    [
      'identity:',
      `  controlPlane: { address: ${cp.grpc}, bundleFile: ${join(cp.dataDir, 'bundle.pem')}, joinTokenFile: ./${name}.token, stateDir: ${stateDir} }`,
      'inbound:',
      '  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:9, protocol: http }',
      'admin: { listen: 127.0.0.1:0 }',
      'telemetry: { accessLog: off }',
      '',
    ].join('\n'),
  );
  return file;
}

/** The SVIDs the control plane issued to web (its audit log). */
async function issued(): Promise<number> {
  const lines = (await readFile(join(cp.dataDir, 'audit.log'), 'utf8')).trim().split('\n');
  return lines.map((l) => JSON.parse(l) as { event: string; spiffeId: string }).filter((e) => e.event === 'svid.issued' && e.spiffeId === WEB).length;
}

/** Two proxies started at once on `stateDir`, each run until it is ready or gone. */
async function startTwo(name: string, stateDir: string): Promise<SupervisedProcess[]> {
  const files = await Promise.all([proxyConfig(`${name}-a`, stateDir), proxyConfig(`${name}-b`, stateDir)]);
  const pair = await Promise.all(files.map((f) => startTestProcess({ name: `tessera proxy ${name}`, command: process.execPath, args: [TESSERA_BIN, 'proxy', '--config', f], cwd: dir })));
  started.push(...pair);
  await until(`${name}: each proxy ready or gone`, () => pair.every((p) => p.stdout().includes(READY) || !p.running), 30_000, 50);
  return pair;
}

const serialOf = async (p: SupervisedProcess) => {
  const admin = readListeningLine(p.stdout()).admin;
  return ((await (await fetch(`http://${admin}/certs`)).json()) as { serial: string }).serial;
};

describe('something at <stateDir>/proxy.lock that is no lock file of the proxy user\'s', () => {
  const variants: [string, (file: string) => Promise<unknown>, RegExp][] = [
    ['text', (f) => writeFile(f, 'left here by something else, not an SQLite file\n', { mode: 0o600 }), /is not a lock file/],
    ['directory', (f) => mkdir(f), /is a directory, not a lock file/],
    ['fifo', async (f) => execFileSync('mkfifo', [f]), /is a FIFO, not a lock file/],
    ['symlink', (f) => symlink(join(dir, 'elsewhere.lock'), f), /is a symbolic link/],
  ];
  if (process.getuid?.() === 0) {
    variants.push([
      'other-user',
      async (f) => {
        await writeFile(f, '', { mode: 0o600 });
        await chown(f, 65534, 65534);
      },
      /is owned by uid 65534/,
    ]);
  }

  test.each(variants)('%s: both proxies given the dir fail their start with the coded error naming it, before attesting', async (name, make, reason) => {
    const stateDir = join(dir, `state-${name}`);
    await mkdir(stateDir, { mode: 0o700 });
    const lockFile = join(stateDir, 'proxy.lock');
    await make(lockFile);
    const before = await issued();
    const pair = await startTwo(name, stateDir);
    expect(pair.filter((p) => p.running).map((p) => p.stderr())).toEqual([]);
    for (const p of pair) {
      expect((await p.exited).code).toBe(1);
      expect(p.stderr()).toContain('TESSERA_ERR_IDENTITY_STATE_LOCK_FAILED');
      expect(p.stderr()).toContain(lockFile);
      expect(p.stderr()).toMatch(reason);
      expect(p.stderr()).not.toContain('cannot be locked (read-only?)');
    }
    // Neither attested (their tokens are unspent), and what was there is still there, as it was.
    expect(await issued()).toBe(before);
    expect(await readdir(stateDir)).toEqual(['proxy.lock']);
  }, 60_000);
});

describe.skipIf(!canMount())('a stateDir on a read-only mount', () => {
  test('each proxy warns that it cannot be locked and runs without it: both ready, on SVIDs of their own (none restored)', async () => {
    // A state dir a proxy filled (SVID, bundle, lock file), then mounted read-only.
    const src = join(dir, 'kept-state');
    const first = await startProxyProcess(await proxyConfig('keeper', src), 30_000);
    await until('the SVID is kept', async () => (await readdir(src).catch((): string[] => [])).includes('svid.key.pem'), 10_000);
    expect(await first.stop()).toBe(0);
    const keptFiles = (await readdir(src)).sort();
    const ro = join(dir, 'ro-state');
    await mkdir(ro);
    execFileSync('mount', ['--bind', '-o', 'ro', src, ro], { stdio: 'ignore' });
    try {
      const before = await issued();
      const pair = await startTwo('ro', ro);
      expect(pair.filter((p) => !p.running).map((p) => p.stderr())).toEqual([]);
      const serials = await Promise.all(pair.map(serialOf));
      expect(new Set(serials).size).toBe(2);
      for (const p of pair) {
        expect(p.stderr()).toContain('the state dir cannot be written, so it cannot be locked: it is not used');
        expect(p.stderr()).toContain('read-only file system (EROFS)');
        expect(p.stderr()).not.toContain('SVID restored from the state dir');
        expect(p.stderr()).not.toContain('TESSERA_ERR_IDENTITY_STATE_WRITE_FAILED');
      }
      // Each attested with its own token.
      expect(await issued()).toBe(before + 2);
      for (const p of pair) expect(await p.stop({ graceMs: 15_000 })).toBe(0);
    } finally {
      execFileSync('umount', [ro], { stdio: 'ignore' });
    }
    expect((await readdir(src)).sort()).toEqual(keptFiles);
  }, 90_000);
});

describe('what the state dir holds after a start and a restart (audit 56c F2)', () => {
  /** Each entry of `d` with its type and mode. */
  const listing = async (d: string) => Object.fromEntries(await Promise.all((await readdir(d)).sort().map(async (n) => [n, `${(await stat(join(d, n))).isFile() ? 'file' : 'other'} ${((await stat(join(d, n))).mode & 0o777).toString(8)}`])));
  const KEPT = { 'bundle.example.org.pem': 'file 600', 'proxy.lock': 'file 600', 'svid.key.pem': 'file 600' };

  test('only 0600 files, no SQLite journal beside the lock (a 0644 one an earlier version left is removed); the control plane\'s data dir has none either', async () => {
    const stateDir = join(dir, 'modes-state');
    const config = await proxyConfig('modes', stateDir);
    const first = await startProxyProcess(config, 30_000);
    try {
      await until('the SVID and the bundle are kept', async () => Object.keys(await listing(stateDir)).length >= 3, 10_000);
      expect(await listing(stateDir)).toEqual(KEPT);
      expect((await stat(stateDir)).mode & 0o777).toBe(0o700);
    } finally {
      expect(await first.stop()).toBe(0);
    }
    // What an earlier version left after a SIGKILL, under umask 022.
    await writeFile(join(stateDir, 'proxy.lock-journal'), Buffer.alloc(512), { mode: 0o644 });
    const second = await startProxyProcess(config, 30_000);
    try {
      expect(second.stderr()).toContain('SVID restored from the state dir');
      expect(await listing(stateDir)).toEqual(KEPT);
    } finally {
      expect(await second.stop()).toBe(0);
    }
    // The control plane, running all along: its lock is 0600 and has no journal beside it.
    const data = await listing(cp.dataDir);
    expect(data['control-plane.lock']).toBe('file 600');
    expect(Object.keys(data).filter((n) => n.includes('lock-journal'))).toEqual([]);
  }, 90_000);
});
