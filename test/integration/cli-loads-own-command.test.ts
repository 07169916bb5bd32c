// A `tessera` command loads its own code only: the command table declares flags and help, and what a command does
// (cli/run/) is loaded when it runs. Checked on the built CLI, run as a child with a module hook (--import) that
// records every module the process loads: before, `tessera version` and every help and usage error loaded every
// command's implementation, 103 of Tessera's modules (the control plane's configs, the mesh launcher, the proxy's
// worker setup…) and the YAML parser's 72, ~0.1 s of CPU per run.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { makeTempDir, REPO_ROOT, run, TESSERA_BIN } from '../helpers/run.js';

/** Writes the file:// URL of every module the process loads (ESM and CommonJS) to $LOADED_FILE at exit. */
const HOOK = `import { registerHooks } from 'node:module';
import { writeFileSync } from 'node:fs';
const loaded = [];
registerHooks({ load(url, context, next) { loaded.push(url); return next(url, context); } });
process.on('exit', () => writeFileSync(process.env.LOADED_FILE, loaded.join('\\n')));
`;

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  await writeFile(join(dir, 'hook.mjs'), HOOK);
});
afterAll(() => cleanup());

/** The modules a run of `tessera ...args` loaded: Tessera's as paths under dist/, packages by name. */
async function loads(name: string, args: readonly string[]): Promise<{ code: number; own: string[]; packages: string[] }> {
  const file = join(dir, `${name}.loaded`);
  const r = await run(process.execPath, ['--import', pathToFileURL(join(dir, 'hook.mjs')).href, TESSERA_BIN, ...args], { cwd: dir, env: { ...process.env, LOADED_FILE: file } });
  const urls = (await readFile(file, 'utf8')).split('\n').filter((u) => u.startsWith('file:'));
  const paths = urls.map((u) => fileURLToPath(u));
  const packages = new Set(paths.filter((p) => p.includes('/node_modules/')).map((p) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(p)![1]!));
  const own = paths.filter((p) => !p.includes('/node_modules/')).map((p) => relative(join(REPO_ROOT, 'dist'), p));
  return { code: r.code, own, packages: [...packages].sort() };
}

const NOWHERE = () => join(dir, 'no-control-plane'); // no admin.sock: the command fails at its first request
const ADMIN_CLIENT = 'control-plane/src/admin/admin-client.js';

/** argv, exit code, the cli/run/ modules and the modules of the sides (control-plane/, proxy/, bench/) it loads. */
const CASES: readonly (readonly [string, () => string[], number, string[], string[]])[] = [
  ['version', () => ['version'], 0, ['cli/run/version.js'], []],
  ['--version', () => ['--version'], 0, ['cli/run/version.js'], []],
  ['--help', () => ['--help'], 0, [], []],
  ['help of a group', () => ['ca'], 2, [], []],
  ['help of a command', () => ['token', 'create', '--help'], 0, [], []],
  ['usage error of the parser', () => ['certs', 'list'], 2, [], []],
  ['usage error of the run', () => ['token', 'create', '--data-dir', NOWHERE(), '--spiffe-id', 'spiffe://example.org/a', '--ttl', '31d'], 2, ['cli/run/token-create.js'], [ADMIN_CLIENT]],
  ['token create', () => ['token', 'create', '--data-dir', NOWHERE(), '--spiffe-id', 'spiffe://example.org/a'], 1, ['cli/run/token-create.js'], [ADMIN_CLIENT]],
  ['ca status', () => ['ca', 'status', '--data-dir', NOWHERE()], 1, ['cli/run/ca-status.js'], [ADMIN_CLIENT]],
  ['ca activate', () => ['ca', 'activate', '--data-dir', NOWHERE()], 1, ['cli/run/ca-lifecycle.js'], [ADMIN_CLIENT]],
  ['revoke list', () => ['revoke', 'list', '--data-dir', NOWHERE()], 1, ['cli/run/revoke.js'], [ADMIN_CLIENT]],
  ['svid verify', () => ['svid', 'verify', '--bundle', NOWHERE(), 'cert.pem'], 1, ['cli/run/svid-verify-jwt.js', 'cli/run/svid-verify.js'], []],
  ['demo-app', () => ['demo-app', '--name', 'a', '--listen', 'nowhere'], 2, ['cli/run/demo-app.js'], []],
  ['load', () => ['load', '--url', 'ftp://127.0.0.1/'], 2, ['cli/run/load.js'], []],
];

describe('a tessera command loads its own code only', () => {
  beforeAll(() => mkdir(NOWHERE(), { recursive: true }));

  test.each(CASES)('%s', async (name, argv, code, runModules, sides) => {
    const r = await loads(name.replace(/\W+/g, '-'), argv());
    expect(r.code).toBe(code);
    expect(r.own).toContain('cli/tessera.js');
    // No package: not the YAML parser, pino, grpc-js or the X.509 library.
    expect(r.packages).toEqual([]);
    expect(r.own.filter((p) => p.startsWith('cli/run/')).sort()).toEqual(runModules);
    expect(r.own.filter((p) => /^(control-plane|proxy|bench)\//.test(p))).toEqual(sides);
    expect(r.own.filter((p) => p.startsWith('cli/up/'))).toEqual([]);
  });
});
