// `tessera control-plane` as its own process (audit 31b N1): its config file is read once at start, so an edit (an
// atomic rename, as a ConfigMap update arrives) is logged as a warning naming the changed keys and the restart
// command; a file that no longer validates is logged as one a restart would fail on. Nothing is applied. A FIFO
// swapped in is refused unread (audit 55a F1), checked here in the child process: were it read, the process would
// block for ever, and this test would fail at its deadlines instead of hanging the test worker (audit 56c F4).
import { execFileSync } from 'node:child_process';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type RunningControlPlane, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { makeTempDir } from '../helpers/run.js';
import { until } from '../helpers/until.js';

let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane | undefined;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
});
afterAll(async () => {
  await cp?.stop(5_000);
  await cleanup?.();
});

async function replace(file: string, text: string): Promise<void> {
  await writeFile(`${file}.new`, text);
  await rename(`${file}.new`, file);
}

test('an edited config file is logged as needing a restart; the running process keeps its config', async () => {
  const file = await writeControlPlaneConfig(dir);
  cp = await startControlPlaneProcess(dir, file);
  const original = await readFile(file, 'utf8');
  const warnings = () => cp!.stderr().split('\n').filter((l) => l.includes('control plane: config file'));

  await replace(file, original.replace('listen: 127.0.0.1:0', 'listen: 127.0.0.1:28902'));
  await until('the edit to be reported', () => warnings().length === 1, 10_000, 25);
  const edit = JSON.parse(warnings()[0]!) as { level: string; keys: string[]; msg: string };
  expect(edit.level).toBe('warn');
  expect(edit.keys).toEqual(['listen']);
  expect(edit.msg).toContain('kubectl -n tessera-system rollout restart deployment/tessera-control-plane');

  await replace(file, `${original}unknownKey: 1\n`);
  await until('the invalid file to be reported', () => warnings().length === 2, 10_000, 25);
  expect(warnings()[1]).toContain('no longer validates');
  expect(warnings()[1]).toContain('TESSERA_ERR_CONFIG_INVALID');
  expect(warnings()[1]).toContain('unknownKey');
  // Still serving where it started.
  expect(cp.proc.exitCode).toBeNull();
  expect(await cp.stop(5_000)).toBe(0);
  cp = undefined;
}, 60_000);

test('a FIFO swapped in for the config file: refused with its code, never opened; the process goes on serving and stops', async () => {
  const sub = join(dir, 'fifo-case');
  const file = await writeControlPlaneConfig(sub);
  cp = await startControlPlaneProcess(sub, file);
  const refusals = () => cp!.stderr().split('\n').filter((l) => l.includes('no longer validates') && l.includes('not a regular file'));
  const fifo = join(sub, 'fifo');
  execFileSync('mkfifo', [fifo]);
  await rm(file);
  await rename(fifo, file);
  // Every step has a deadline: a process blocked opening the FIFO answers nothing and is killed by stop().
  await until('the FIFO to be refused', () => refusals().length === 1, 10_000, 25);
  expect(refusals()[0]).toContain('TESSERA_ERR_CONFIG_UNREADABLE');
  const health = await fetch(`http://${cp.admin}/healthz`, { signal: AbortSignal.timeout(5_000) });
  expect(health.status).toBe(200);
  expect(await cp.stop(5_000)).toBe(0);
  cp = undefined;
}, 60_000);
