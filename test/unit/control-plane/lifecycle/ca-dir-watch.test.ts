// The read-only CA directory's watch (audit 38b F9) on fake timers, over a directory in the kubelet's Secret layout
// updated as the kubelet updates it: each change of the files' content is one warning saying the running process
// keeps its CA and a restart applies the files (or would fail on them, and why); a swap to the same content says
// nothing, a swap back to the content it started with is an info line; the files are only read, never swept. The
// moment between the kubelet's `..data` swap and its links to new keys is not reported as a CA that would not load.
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { caDirContent, warnOnCaDirChange } from '../../../../control-plane/src/lifecycle/ca-dir-watch.js';
import { TD } from '../../../helpers/control-plane.js';
import { DAY_MS, openTestCa } from '../../../helpers/control-plane-parts.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { makeTempDir, run } from '../../../helpers/run.js';
import { layOutSecret } from '../../../helpers/secret-mount.js';

let dir: string;
let cleanup: () => Promise<void>;
let first: Record<string, Buffer>;
let second: Record<string, Buffer>;
let secondId: string;

/** The files of a new CA's directory, as `kubectl create secret generic --from-file=<data dir>/ca/` takes them. */
async function seedCa(name: string, time: FakeTime): Promise<{ files: Record<string, Buffer>; id: string }> {
  const d = join(dir, name);
  mkdirSync(d);
  const parts = await openTestCa(d, time, { rootTtlMs: 365 * DAY_MS, intermediateTtlMs: 30 * DAY_MS });
  const id = parts.ca.current().authorities[0]!.record.id;
  await parts.store.close();
  const ca = join(d, 'ca');
  return { files: Object.fromEntries(readdirSync(ca).map((n) => [n, readFileSync(join(ca, n))])), id };
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const time = new FakeTime();
  first = (await seedCa('seed-1', time)).files;
  ({ files: second, id: secondId } = await seedCa('seed-2', time));
});
afterAll(() => cleanup?.());

interface Line {
  level: 'info' | 'warn';
  obj: Record<string, unknown>;
  msg: string;
}

/** A logger that keeps its lines. */
function collected(): { lines: Line[]; log: { info(obj: Record<string, unknown>, msg: string): void; warn(obj: Record<string, unknown>, msg: string): void } } {
  const lines: Line[] = [];
  return { lines, log: { info: (obj, msg) => void lines.push({ level: 'info', obj, msg }), warn: (obj, msg) => void lines.push({ level: 'warn', obj, msg }) } };
}

test('each change of the CA files is one warning naming the restart; the same content again says nothing', async () => {
  const time = new FakeTime();
  // A stray certificate no ca-state.json names: a writable store would sweep it at load, the watch's check must not.
  const dataDir = join(dir, 'replica');
  const secret = await layOutSecret(join(dataDir, 'ca'), { ...first, 'stray.crt': 'x' }, { mode: 0o400 });
  const { lines, log } = collected();
  const deps = { dataDir, trustDomain: TrustDomain.parse(TD), clock: time, log, timers: time, pollMs: 1_000 };
  // A CA this process writes itself (owner) or follows through the store (shared) is not watched.
  expect(warnOnCaDirChange('owner', deps)).toBeUndefined();
  expect(warnOnCaDirChange('shared', deps)).toBeUndefined();
  expect(time.pending).toBe(0);
  const watch = warnOnCaDirChange('fixed', deps)!;
  // File-system events only schedule a check on the fake timers; the poll (10 s while watched) finds any change too.
  const tick = () => time.advance(10_000);

  // The Secret replaced by another CA's files (a rotation's next step, or the wrong CA): a restart would load them.
  await secret.update({ ...second, 'stray.crt': 'x' });
  tick();
  expect(lines).toHaveLength(1);
  expect(lines[0]!.level).toBe('warn');
  expect(lines[0]!.msg).toContain(`control plane: CA files changed (${secret.dir}); the running process keeps the CA it started with: restart to apply them`);
  expect(lines[0]!.msg).toContain('kubectl -n tessera-system rollout restart deployment/tessera-control-plane');
  expect(lines[0]!.obj['authorities']).toEqual([`${secondId} (active)`]);
  expect(existsSync(join(secret.dir, 'stray.crt'))).toBe(true);

  // The kubelet swapping in the same files again (a Secret re-applied unchanged): nothing more.
  await secret.update({ ...second, 'stray.crt': 'x' });
  tick();
  expect(lines).toHaveLength(1);

  // Files a restart would fail on: said, with the reason the restart would give.
  const rootKey = Object.keys(second).find((f) => f.endsWith('-root.key'))!;
  const { [rootKey]: _gone, ...broken } = second;
  await secret.update(broken);
  tick();
  expect(lines).toHaveLength(2);
  expect(lines[1]!.level).toBe('warn');
  expect(lines[1]!.msg).toContain('would not load');
  expect(lines[1]!.msg).toContain('a restart would fail until they are fixed');
  expect(String(lines[1]!.obj['err'])).toContain(`TESSERA_ERR_CA_STATE_CORRUPT: ${join(secret.dir, rootKey)}: no such file`);

  // Back to what the process started with: an info line, no warning.
  await secret.update({ ...first, 'stray.crt': 'x' });
  tick();
  expect(lines).toHaveLength(3);
  expect(lines[2]!.level).toBe('info');
  expect(lines[2]!.msg).toContain('back to the content this process started with');

  watch.close();
  expect(time.pending).toBe(0);
});

// Audit 61k F2: a broken JWT key file was announced as "restart to apply them"; a restart refused it.
test('JWT-SVID key files in the Secret are judged too: a good .next is named, one not P-256 would not load', async () => {
  const time = new FakeTime();
  const dataDir = join(dir, 'replica-jwt');
  const secret = await layOutSecret(join(dataDir, 'ca'), first, { mode: 0o400 });
  const { lines, log } = collected();
  const watch = warnOnCaDirChange('fixed', { dataDir, trustDomain: TrustDomain.parse(TD), clock: time, log, timers: time, pollMs: 1_000 })!;
  const key = (curve: string) => generateKeyPairSync('ec', { namedCurve: curve }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  await secret.update({ ...first, 'jwt-signing-key.next.pem': key('P-256') });
  time.advance(10_000);
  expect(lines).toHaveLength(1);
  expect(lines[0]!.msg).toContain('restart to apply them');
  expect(lines[0]!.obj['jwtKeys']).toEqual([expect.stringMatching(/ \(next\)$/)]);
  await secret.update({ ...first, 'jwt-signing-key.next.pem': key('P-384') });
  time.advance(10_000);
  time.advance(10_000);
  expect(lines.at(-1)!.msg).toContain('would not load');
  expect(String(lines.at(-1)!.obj['err'])).toContain('a JWT signing key must be ECDSA P-256');
  watch.close();
});

test("the kubelet's links to a Secret's new keys come after its `..data` swap: that moment is no broken CA", async () => {
  const time = new FakeTime();
  const dataDir = join(dir, 'replica-links');
  const secret = await layOutSecret(join(dataDir, 'ca'), first, { mode: 0o400 });
  const { lines, log } = collected();
  const watch = warnOnCaDirChange('fixed', { dataDir, trustDomain: TrustDomain.parse(TD), clock: time, log, timers: time, pollMs: 1_000 })!;
  await secret.update(second);
  // As the kubelet has it for a moment: `..data` is the new CA's, one new key not linked yet.
  const rootKey = Object.keys(second).find((f) => f.endsWith('-root.key'))!;
  unlinkSync(join(secret.dir, rootKey));
  time.advance(1_000);
  expect(lines).toEqual([]);
  symlinkSync(join('..data', rootKey), join(secret.dir, rootKey));
  time.advance(1_000);
  time.advance(10_000);
  expect(lines.map((l) => l.msg)).toEqual([expect.stringContaining('the running process keeps the CA it started with: restart to apply them')]);
  watch.close();
  expect(time.pending).toBe(0);
});

test('the content is the files by name and bytes: the kubelet layout entries and a new timestamp do not count', async () => {
  const secret = await layOutSecret(join(dir, 'secret-2'), first, { mode: 0o400 });
  const before = caDirContent(secret.dir)!;
  expect(before.unreadable).toEqual([]);
  await secret.update(first);
  expect(caDirContent(secret.dir)).toEqual(before);
  await secret.update({ ...first, 'extra.pem': 'x' });
  expect(caDirContent(secret.dir)!.text).not.toBe(before.text);
  expect(caDirContent(join(dir, 'no-such-dir'))).toBeUndefined();
  // A FIFO in a file's place is named, never read (a blocking read would stall the control plane).
  await run('mkfifo', [join(secret.dir, 'ca-state.fifo')]);
  expect(caDirContent(secret.dir)!.unreadable).toEqual(['ca-state.fifo: not a regular file (a FIFO, a device or a directory)']);
});
