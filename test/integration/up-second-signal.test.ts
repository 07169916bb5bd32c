// `tessera up` asked to stop twice in a row (a second Ctrl-C during the drain, a wrapper that forwards the signal):
// it exits at once with 130, and the control plane, sidecars and apps it started go with it instead of living on
// as orphans that hold the mesh's ports. The other signal during a stop is ignored, so a child that a terminal's
// Ctrl-C reached and `tessera up` then sends SIGTERM goes on with its stop. Real processes, real signals.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { allStats, descendantsOf, readStat } from '../../bench/harness/proc-stat.js';
import { freeLowPorts } from '../helpers/free-port.js';
import { type ReadyProcess, startReadyProcess } from '../helpers/ready-process.js';
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

/** Still running: gone from /proc, or a zombie waiting for init to reap it, counts as ended. */
const alive = (pid: number) => {
  const st = readStat(pid);
  return st !== null && st.state !== 'Z';
};

/** `tessera up` with one workload (a control plane, an app, its sidecar), ready. */
async function startMesh(name: string): Promise<ReadyProcess> {
  const meshDir = join(dir, name);
  await mkdir(meshDir, { recursive: true });
  await writeFile(join(meshDir, 'mesh.yaml'), ['trustDomain: signal.test', 'workloads:', `  - { name: web, appPort: ${await freeLowPorts(1)} }`, ''].join('\n'));
  return startReadyProcess(['up', '--config', join(meshDir, 'mesh.yaml'), '--state-dir', join(meshDir, '.tessera')], 'tessera up: ready', { timeoutMs: 90_000, cwd: meshDir });
}

/** Until up says it is stopping (its sidecar's deregistration alone then takes 0.5 s). */
async function untilStopping(up: ReadyProcess): Promise<void> {
  for (let i = 0; i < 200 && !up.stderr().includes('stopping (draining sidecars first)'); i++) await new Promise((ok) => setTimeout(ok, 10));
  expect(up.stderr()).toContain('stopping (draining sidecars first)');
}

test('a second SIGINT ends tessera up at once (exit 130) and takes every process it started with it', async () => {
  const up = await startMesh('same-signal');
  const upPid = up.proc.pid!;
  const children = descendantsOf(upPid, allStats());
  leftovers.push(...children);
  // The control plane, the app and its sidecar at least.
  expect(children.length).toBeGreaterThanOrEqual(3);

  // The first asks for the drain; the second comes while it runs.
  process.kill(upPid, 'SIGINT');
  await untilStopping(up);
  process.kill(upPid, 'SIGINT');
  expect(await up.exited).toBe(130);
  expect(up.stderr()).not.toContain('tessera up: stopped');

  // Killed synchronously in the exit hook; allow the kernel a bounded moment to reap them.
  for (let i = 0; i < 50 && children.some(alive); i++) await new Promise((ok) => setTimeout(ok, 100));
  expect(children.filter(alive)).toEqual([]);
}, 120_000);

test('SIGTERM during a stop begun by SIGINT is ignored: tessera up finishes its stop and exits 0', async () => {
  const up = await startMesh('other-signal');
  process.kill(up.proc.pid!, 'SIGINT');
  await untilStopping(up);
  process.kill(up.proc.pid!, 'SIGTERM');
  expect(await up.exited).toBe(0);
  expect(up.stderr()).toContain('tessera up: stopped');
}, 120_000);
