// `tessera bench authz` hears Ctrl-C: the scenario measures in-process CPU loops, which never gave the event loop a
// turn, so a SIGINT waited for every round to end (69 s after a Ctrl-C at +3 s, exit 0 with full results; audit 51b
// F3). Now the loops yield a turn at least every 100 ms: the first Ctrl-C ends it with exit 1 and no results, and
// since it wrote nothing to its work dir, none is left behind (TMPDIR ends empty).
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startReadyProcess } from '../helpers/ready-process.js';
import { makeTempDir } from '../helpers/run.js';

let dir: string;
let cleanup: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
});

afterAll(async () => {
  await cleanup?.();
});

test('the first Ctrl-C during a round ends `tessera bench authz`: exit 1, no results, no work dir left', async () => {
  const tmp = join(dir, 'tmp');
  await mkdir(tmp);
  // 3 rounds × 7 variants × (0.5 + 2 s) ≈ 50 s when nothing stops it.
  const bench = await startReadyProcess(['bench', 'authz', '--rounds', '3', '--duration', '2s', '--warmup', '500ms'], 'round 1/3', { env: { ...process.env, TMPDIR: tmp }, timeoutMs: 30_000 });
  const code = await bench.stop(20_000, 'SIGINT');
  expect(code, bench.stderr()).toBe(1);
  expect(bench.stderr()).toContain('tessera bench: interrupted');
  // No round past the first was measured, and no result table was printed.
  expect(bench.stderr()).not.toContain('round 2/3');
  expect(bench.stdout()).not.toContain('ns/decision');
  expect(await readdir(tmp)).toEqual([]);
}, 60_000);
