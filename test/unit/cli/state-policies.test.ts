// `tessera up` re-run in the same state dir: its policy directory is the new spec's, exactly (an outside audit: a
// file an earlier run wrote stayed in force after the spec dropped it).
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { writeStatePolicies } from '../../../cli/up/state-policies.js';
import { tempDirPerTest } from '../../helpers/temp-dir.js';

const tmp = tempDirPerTest();

test('the spec files are written and every other entry is removed', async () => {
  const dir = join(tmp.dir, 'policies');
  await mkdir(dir);
  await writeStatePolicies(dir, { 'api.yaml': 'old', 'web.yaml': 'w' });
  await writeFile(join(dir, 'stray.yaml'), 'x');
  await writeStatePolicies(dir, { 'api.yaml': 'new' });
  expect(await readdir(dir)).toEqual(['api.yaml']);
  expect(await readFile(join(dir, 'api.yaml'), 'utf8')).toBe('new');
  await writeStatePolicies(dir, {});
  expect(await readdir(dir)).toEqual([]);
});
