// `tessera up` asked to stop twice in a row (a second Ctrl-C during the drain, a supervisor that signals again):
// it exits at once with 130, and the control plane, sidecars and apps it started go with it instead of living on
// as orphans that hold the mesh's ports. Real processes: the CLI, its children, signals sent to the CLI alone.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { allStats, descendantsOf } from '../../bench/harness/proc-stat.js';
import { freeLowPorts } from '../helpers/free-port.js';
import { startReadyProcess } from '../helpers/ready-process.js';
import { makeTempDir } from '../helpers/run.js';

let dir: string;
let cleanup: (() => Promise<void>) | undefined;
const leftovers: number[] = [];

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
});

afterAll(async () => {
  for (const pid of leftovers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await cleanup?.();
});

const alive = (pid: number) => existsSync(`/proc/${pid}`);

test('a second SIGINT ends tessera up at once (exit 130) and takes every process it started with it', async () => {
  const meshDir = join(dir, 'mesh');
  await mkdir(meshDir, { recursive: true });
  await writeFile(join(meshDir, 'mesh.yaml'), ['trustDomain: signal.test', 'workloads:', `  - { name: web, appPort: ${await freeLowPorts(1)} }`, ''].join('\n'));
  const up = await startReadyProcess(['up', '--config', join(meshDir, 'mesh.yaml'), '--state-dir', join(meshDir, '.tessera')], 'tessera up: ready', { timeoutMs: 90_000, cwd: meshDir });
  const upPid = up.proc.pid!;
  const children = descendantsOf(upPid, allStats());
  leftovers.push(...children);
  // The control plane, the app and its sidecar at least.
  expect(children.length).toBeGreaterThanOrEqual(3);

  // The first asks for the drain; the second comes while it runs (the sidecar's deregistration alone takes 0.5 s).
  process.kill(upPid, 'SIGINT');
  for (let i = 0; i < 200 && !up.stderr().includes('stopping (draining sidecars first)'); i++) await new Promise((ok) => setTimeout(ok, 10));
  expect(up.stderr()).toContain('stopping (draining sidecars first)');
  process.kill(upPid, 'SIGINT');
  expect(await up.exited).toBe(130);
  expect(up.stderr()).not.toContain('tessera up: stopped');

  // Killed synchronously in the exit hook; allow the kernel a bounded moment to reap them.
  for (let i = 0; i < 50 && children.some(alive); i++) await new Promise((ok) => setTimeout(ok, 100));
  expect(children.filter(alive)).toEqual([]);
}, 120_000);
