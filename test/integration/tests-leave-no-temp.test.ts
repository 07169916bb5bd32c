// Nothing is left in the temp dir: test files that make scratch dirs (injector configs, the bind-mount probe, CA
// Secrets, mounts), and the CLI's one-shot and long-running commands (a SIGINT'd `tessera up`), each run as a real
// child process with TMPDIR pointed at a fresh empty dir, which must be empty again when they are done. Before,
// every run of the suite left hundreds of tessera-inject-* and tessera-mount-probe-* dirs in /tmp.
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { TestCa } from '../helpers/test-ca.js';
import { freeLowPorts } from '../helpers/free-port.js';
import { startReadyProcess } from '../helpers/ready-process.js';
import { REPO_ROOT, makeTempDir, run, tessera } from '../helpers/run.js';

// The injector and CA files made a temp dir per call or per file and never removed it; the CA files and
// headroom-probe also mount (a bind mount, a tmpfs) when run as root.
const LEAKED_BEFORE = [
  'test/unit/control-plane/injector/http-proxy-annotation.test.ts',
  'test/unit/control-plane/injector/telemetry-annotations.test.ts',
  'test/unit/control-plane/injector/inbound-mtls-annotation.test.ts',
  'test/unit/control-plane/ca/read-only-ca.test.ts',
  'test/unit/control-plane/ca/plugin-ca-secret.test.ts',
  'test/unit/control-plane/store/headroom-probe.test.ts',
];

let dir: string;
let cleanup: (() => Promise<void>) | undefined;
let n = 0;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
});

afterAll(async () => {
  await cleanup?.();
});

/** A fresh, empty TMPDIR and the environment that points a child at it. */
async function freshTmp(): Promise<{ tmp: string; env: NodeJS.ProcessEnv }> {
  const tmp = join(dir, `t${n++}`);
  await mkdir(tmp);
  // Without this worker's VITEST_* variables a child vitest is a run of its own, not a confused worker.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST')));
  return { tmp, env: { ...env, TMPDIR: tmp } };
}

test('test files that make scratch dirs (and mount) leave none in TMPDIR', async () => {
  const { tmp, env } = await freshTmp();
  // vitest itself, not npx: npm keeps a compile cache in TMPDIR that is not the suite's.
  const r = await run(process.execPath, [join(REPO_ROOT, 'node_modules/vitest/vitest.mjs'), 'run', '--maxWorkers=1', '--reporter=json', ...LEAKED_BEFORE], { cwd: REPO_ROOT, env, timeoutMs: 240_000 });
  expect(r.code, r.stderr).toBe(0);
  const report = JSON.parse(r.stdout) as { testResults: { name: string; status: string; assertionResults: { status: string }[] }[] };
  // Every file ran tests and passed (an empty run would leave nothing too).
  const files = report.testResults.map((f) => [relative(REPO_ROOT, f.name), f.status, f.assertionResults.some((a) => a.status === 'passed')]);
  expect(files.sort()).toEqual(LEAKED_BEFORE.map((f) => [f, 'passed', true]).sort());
  expect(await readdir(tmp)).toEqual([]);
}, 300_000);

test('one-shot CLI commands leave nothing in TMPDIR', async () => {
  const { tmp, env } = await freshTmp();
  const work = join(dir, 'cli');
  await mkdir(work);
  const bundle = join(work, 'bundle.pem');
  await writeFile(bundle, await (await TestCa.create({ trustDomain: 'example.org' })).bundlePem());
  await writeFile(join(work, 'pod.yaml'), 'apiVersion: v1\nkind: Pod\nmetadata: { name: a, namespace: shop }\nspec: { containers: [{ name: a, image: busybox }] }\n');
  await mkdir(join(work, 'policies'));
  for (const args of [
    ['version'],
    ['inject', '-f', join(work, 'pod.yaml'), '--bundle', bundle],
    ['svid', 'verify', '--bundle', bundle, bundle],
    ['policy', 'check', '--policies', join(work, 'policies'), '--from', 'spiffe://example.org/a', '--to', 'spiffe://example.org/b'],
    ['bench', 'list'],
  ]) {
    const res = await tessera(args, { env, cwd: work });
    expect(res.stderr, args.join(' ')).not.toContain('TESSERA_ERR_CLI_USAGE');
    expect(await readdir(tmp), args.join(' ')).toEqual([]);
  }
}, 60_000);

test('tessera up stopped by SIGINT leaves nothing in TMPDIR (its state dir is where it says)', async () => {
  const { tmp, env } = await freshTmp();
  const mesh = join(dir, 'mesh');
  await mkdir(mesh);
  await writeFile(join(mesh, 'mesh.yaml'), ['trustDomain: tmp.test', 'workloads:', `  - { name: web, appPort: ${await freeLowPorts(1)} }`, ''].join('\n'));
  const up = await startReadyProcess(['up', '--config', join(mesh, 'mesh.yaml'), '--state-dir', join(mesh, '.tessera')], 'tessera up: ready', { env, cwd: mesh, timeoutMs: 90_000 });
  expect(await up.stop(60_000, 'SIGINT')).toBe(0);
  expect(await readdir(tmp)).toEqual([]);
}, 120_000);
