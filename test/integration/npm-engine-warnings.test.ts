// npm and npx driven by the machine's own, older Node stay quiet about the pinned Node 24 (the project's .npmrc).
import { execFileSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { REPO_ROOT, run } from '../helpers/run.js';

/** The machine's node and npm: the first on PATH outside node_modules (npm scripts put the pinned Node 24 first). */
function machineNpm(): { node: string; npmCli: string; major: number } | undefined {
  const dirs = (process.env['PATH'] ?? '').split(delimiter).filter((d) => d && !d.includes('node_modules'));
  const node = dirs.map((d) => join(d, 'node')).find((p) => existsSync(p));
  const npm = dirs.map((d) => join(d, 'npm')).find((p) => existsSync(p));
  if (!node || !npm) return undefined;
  const major = Number(execFileSync(node, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }).trim());
  return { node, npmCli: realpathSync(npm), major };
}

const machine = machineNpm();
const older = machine !== undefined && machine.major < 24;

describe.skipIf(!older)(`npm on the machine's Node ${machine?.major ?? '?'} (older than the pinned 24)`, () => {
  const npm = (args: string[]) => run(machine!.node, [machine!.npmCli, ...args], { cwd: REPO_ROOT, timeoutMs: 60_000 });
  const install = ['install', '--dry-run', '--offline', '--no-audit', '--no-fund'];

  test('the engine check does fire on this machine (npm with its warnings shown)', async () => {
    const r = await npm([...install, '--loglevel=warn']);
    expect(r.stderr).toContain('EBADENGINE');
  });

  test('npm install and npx tessera print no EBADENGINE screen', async () => {
    const i = await npm(install);
    expect(i.code, i.stderr).toBe(0);
    expect(i.stderr).not.toContain('EBADENGINE');
    const x = await npm(['exec', '--offline', '--', 'tessera', '--help']);
    expect(x.code, x.stderr).toBe(0);
    expect(x.stdout).toContain('Usage: tessera <command>');
    expect(x.stderr).not.toContain('EBADENGINE');
  });
});
