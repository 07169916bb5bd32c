// A stop signal that arrives while the `tessera` binary is still loading its modules (the first ~0.3 s of a start,
// longer on a cold disk) is kept and answered: the control plane starts, stops and exits 0. Before, the handlers
// were installed after the imports and Node's default action ended the process silently with 143. A module hook
// holds the CLI's command table for 1.5 s, so the signal lands inside the imports on any machine.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { writeControlPlaneConfig } from '../helpers/control-plane.js';
import { startTestProcess } from '../helpers/ready-process.js';
import { TESSERA_BIN, makeTempDir } from '../helpers/run.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await makeTempDir()));
afterAll(() => cleanup());

/** A resolve hook that marks the moment the command table is asked for, then holds it 1.5 s. */
async function holdingHook(marker: string): Promise<string> {
  const hooks = join(dir, 'hold-hooks.mjs');
  await writeFile(
    hooks,
    `import { writeFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  if (specifier.endsWith('/commands/index.js')) {
    writeFileSync(${JSON.stringify(marker)}, 'held');
    await new Promise((r) => setTimeout(r, 1500));
  }
  return next(specifier, context);
}
`,
  );
  const register = join(dir, 'register.mjs');
  await writeFile(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  return register;
}

test('SIGTERM while the CLI loads its modules: the control plane starts, stops and exits 0, not a silent 143', async () => {
  const config = await writeControlPlaneConfig(dir);
  await writeFile(config, (await readFile(config, 'utf8')).replace('logLevel: warn', 'logLevel: info'));
  const marker = join(dir, 'imports-held');
  const register = await holdingHook(marker);
  // No ready condition: the test's own signal comes before any line.
  const p = await startTestProcess({ name: 'early-stop', command: process.execPath, args: ['--import', register, TESSERA_BIN, 'control-plane', '--config', config], cwd: dir });
  // Bounded: 200 polls of 25 ms for the hook's mark.
  for (let i = 0; i < 200 && !existsSync(marker); i++) await new Promise((r) => setTimeout(r, 25));
  expect(existsSync(marker)).toBe(true);
  p.child.kill('SIGTERM');
  const end = await Promise.race([p.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000))]);
  if (end === 'timeout') p.child.kill('SIGKILL');
  const out = p.stdout() + p.stderr();
  expect(end, out).toEqual({ code: 0, signal: null });
  expect(out).toContain('tessera control-plane: ready');
  expect(out).toMatch(/"msg":"stopping".*"signal":"SIGTERM"|"signal":"SIGTERM".*"msg":"stopping"/);
}, 30_000);
