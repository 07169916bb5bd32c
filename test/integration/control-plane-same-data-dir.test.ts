// Two `tessera control-plane` processes started at the same moment on one fresh SQLite data dir (audit F5): exactly
// one serves, the other exits 1 with TESSERA_ERR_CP_ALREADY_RUNNING before it writes anything (no CA of its own,
// no log line), and what the survivor signs with is the one authority on disk. Before the data dir lock both made a
// CA and the survivor could sign with keys ca-state.json did not name. A lock left by a SIGKILLed control plane
// never blocks the next start: the kernel dropped it with the process. Anything at the lock's path that is no lock file
// of this user's (a directory, a FIFO, a symbolic link, another user's file, text) fails the start, named.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { SupervisedProcess } from '../../shared-io/process-supervisor.js';
import { TD } from '../helpers/control-plane.js';
import { startReadyProcess, startTestProcess } from '../helpers/ready-process.js';
import { makeTempDir, TESSERA_BIN } from '../helpers/run.js';
import { until } from '../helpers/until.js';

const READY = 'tessera control-plane: ready';
const TRIES = 6;

let dir: string;
let cleanup: () => Promise<void>;
const started: SupervisedProcess[] = [];

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
});

afterAll(async () => {
  for (const p of started) await p.stop({ graceMs: 5_000 });
  await cleanup?.();
});

/** A config of its own (ports 0) on the shared data dir. */
async function config(name: string, dataDir: string): Promise<string> {
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, [`trustDomain: ${TD}`, `dataDir: ${dataDir}`, 'listen: 127.0.0.1:0', 'adminListen: 127.0.0.1:0', 'logLevel: info', ''].join('\n'));
  return file;
}

function spawnControlPlane(configFile: string): Promise<SupervisedProcess> {
  return startTestProcess({ name: 'tessera control-plane', command: process.execPath, args: [TESSERA_BIN, 'control-plane', '--config', configFile], env: process.env });
}

async function signingAuthority(p: SupervisedProcess): Promise<string> {
  const admin = /tessera control-plane: grpc \S+ admin (\S+)/.exec(p.stdout())?.[1];
  const res = await fetch(`http://${admin}/certs`);
  return ((await res.json()) as { signingAuthority: string }).signingAuthority;
}

test(`started together on one fresh data dir: one serves, the other is refused before it writes anything (${TRIES} tries)`, async () => {
  for (let i = 0; i < TRIES; i++) {
    const dataDir = join(dir, `data-${i}`);
    const files = await Promise.all([config(`a-${i}`, dataDir), config(`b-${i}`, dataDir)]);
    const pair = await Promise.all(files.map(spawnControlPlane));
    started.push(...pair);
    await until(`try ${i}: each one ready or gone`, async () => pair.every((p) => p.stdout().includes(READY) || !p.running), 20_000, 50);
    const serving = pair.filter((p) => p.running);
    expect(serving.length, pair.map((p) => p.stderr()).join('\n')).toBe(1);
    const [survivor, loser] = serving[0] === pair[0] ? pair : [pair[1]!, pair[0]!];
    expect((await loser!.exited).code).toBe(1);
    // The refusal is its only output: nothing was created or logged before it.
    expect(loser!.stderr().trim().split('\n')).toEqual([expect.stringContaining('TESSERA_ERR_CP_ALREADY_RUNNING')]);
    expect(loser!.stdout()).toBe('');
    // One authority on disk, and it is the one the survivor signs with.
    const state = JSON.parse(await readFile(join(dataDir, 'ca', 'ca-state.json'), 'utf8')) as { authorities: { id: string }[] };
    expect(state.authorities.map((a) => a.id)).toEqual([await signingAuthority(survivor!)]);
    const ids = new Set((await readdir(join(dataDir, 'ca'))).filter((f) => f !== 'ca-state.json').map((f) => f.split('-')[0]));
    expect([...ids]).toEqual([state.authorities[0]!.id]);
    expect(await survivor!.stop()).toBe(0);
  }
}, 90_000);

test('a control plane SIGKILLed while holding the data dir leaves no lock behind: the next start serves the same CA', async () => {
  const dataDir = join(dir, 'data-killed');
  const cfg = await config('killed', dataDir);
  const first = await startReadyProcess(['control-plane', '--config', cfg], READY);
  const admin = /admin (\S+)/.exec(first.stdout())![1];
  const before = ((await (await fetch(`http://${admin}/certs`)).json()) as { signingAuthority: string }).signingAuthority;
  expect(existsSync(join(dataDir, 'control-plane.lock'))).toBe(true);
  await first.stop(5_000, 'SIGKILL');
  const again = await startReadyProcess(['control-plane', '--config', cfg], READY);
  try {
    const admin2 = /admin (\S+)/.exec(again.stdout())![1];
    expect(((await (await fetch(`http://${admin2}/certs`)).json()) as { signingAuthority: string }).signingAuthority).toBe(before);
  } finally {
    expect(await again.stop()).toBe(0);
  }
}, 60_000);

test('a data dir whose control-plane.lock is no lock file of this user\'s: the start fails naming it, for each variant (audit 56c F1)', async () => {
  const variants: [string, (f: string) => Promise<unknown>, RegExp][] = [
    ['text', (f) => writeFile(f, 'left here by something else, not an SQLite file\n', { mode: 0o600 }), /is not a lock file/],
    ['directory', (f) => mkdir(f), /is a directory, not a lock file/],
    ['fifo', async (f) => execFileSync('mkfifo', [f]), /is a FIFO, not a lock file/],
    ['symlink', (f) => symlink(join(dir, 'elsewhere.lock'), f), /is a symbolic link/],
  ];
  if (process.getuid?.() === 0) {
    const theirs = async (f: string) => {
      await writeFile(f, '', { mode: 0o600 });
      await chown(f, 65534, 65534);
    };
    variants.push(['other-user', theirs, /is owned by uid 65534/]);
  }
  // Side by side: each variant its own data dir, and each start ends at the lock.
  await Promise.all(
    variants.map(async ([name, make, reason]) => {
      const dataDir = join(dir, `data-${name}`);
      await mkdir(dataDir, { mode: 0o700 });
      const lockFile = join(dataDir, 'control-plane.lock');
      await make(lockFile);
      const p = await spawnControlPlane(await config(`lock-${name}`, dataDir));
      started.push(p);
      await until(`${name}: ready or gone`, () => p.stdout().includes(READY) || !p.running, 20_000, 50);
      expect(p.running, `${name}: ${p.stdout()}`).toBe(false);
      expect((await p.exited).code).toBe(1);
      expect(p.stderr()).toContain('TESSERA_ERR_CP_DATA_DIR');
      expect(p.stderr()).toContain(lockFile);
      expect(p.stderr()).toMatch(reason);
      // Nothing was made in it: the refusal came first.
      expect(await readdir(dataDir)).toEqual(['control-plane.lock']);
    }),
  );
}, 90_000);
