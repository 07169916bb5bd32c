// `tessera --version` and `tessera version`, run as a user would (also from outside the repository): one line,
// `tessera <semver> (node <v>, openssl <v>)`, with the package's version and the running Node's versions.
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { REPO_ROOT, tessera } from '../helpers/run.js';

const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const expected = `tessera ${version} (node ${process.versions.node}, openssl ${process.versions.openssl})\n`;

test.each([['--version'], ['version']])('tessera %s prints the version line and exits 0, from any directory', async (arg) => {
  expect(version).toMatch(/^\d+\.\d+\.\d+/);
  for (const cwd of [REPO_ROOT, tmpdir()]) {
    const r = await tessera([arg], { cwd });
    expect(r).toEqual({ code: 0, stdout: expected, stderr: '' });
  }
});

test('the top-level help names --version; the version command rejects arguments', async () => {
  expect((await tessera(['--help'])).stdout).toContain('tessera --version');
  const r = await tessera(['version', 'extra']);
  expect(r.code).toBe(2);
});
