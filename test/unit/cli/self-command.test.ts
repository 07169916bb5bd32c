// selfCommand: the command line the CLI prints for running itself: the bare `tessera` only when the first
// `tessera` on PATH is this very script, else the absolute Node binary and script (quoted for the shell).
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { selfCommand, shellQuote } from '../../../cli/self-command.js';
import { makeTempDir } from '../../helpers/run.js';

let dir: string;
let cleanup: () => Promise<void>;
let script: string;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  mkdirSync(join(dir, 'my tessera/dist/cli'), { recursive: true });
  script = join(dir, 'my tessera/dist/cli/tessera.js');
  writeFileSync(script, '');
  mkdirSync(join(dir, 'bin'));
  symlinkSync(script, join(dir, 'bin', 'tessera'));
  mkdirSync(join(dir, 'other'));
  writeFileSync(join(dir, 'other', 'tessera'), '#!/bin/sh\n');
});
afterAll(() => cleanup?.());

describe('selfCommand', () => {
  test('installed: the first tessera on PATH is this script (through the bin symlink)', () => {
    expect(selfCommand('/usr/bin/node', join(dir, 'bin', 'tessera'), `/nonexistent:${join(dir, 'bin')}`)).toBe('tessera');
    expect(selfCommand('/usr/bin/node', script, join(dir, 'bin'))).toBe('tessera');
  });

  test('not installed, or another tessera first on PATH (the unrelated npm package): node and the script, absolute', () => {
    const explicit = `/opt/node-24/bin/node '${script}'`;
    expect(selfCommand('/opt/node-24/bin/node', script, '')).toBe(explicit);
    expect(selfCommand('/opt/node-24/bin/node', script, undefined)).toBe(explicit);
    expect(selfCommand('/opt/node-24/bin/node', script, `${join(dir, 'other')}:${join(dir, 'bin')}`)).toBe(explicit);
  });

  test("under npx / npm run: the PATH entries npm adds for that one command are not the user's, so not counted", () => {
    // `npx tessera up` links the bin into ~/.npm/_npx/<hash>/node_modules/.bin, first on the command's PATH only: a
    // second terminal has no `tessera` there (audit 52a F5: the printed hints failed with "command not found").
    for (const transient of ['.npm/_npx/0a1b2c/node_modules/.bin', 'repo/node_modules/.bin', 'repo/node_modules/.bin/', 'npm/node_modules/@npmcli/run-script/lib/node-gyp-bin']) {
      const d = join(dir, transient);
      mkdirSync(d, { recursive: true });
      try {
        symlinkSync(script, join(d, 'tessera'));
      } catch {
        // made by an earlier entry of this loop (the trailing-slash spelling)
      }
      expect(selfCommand('/opt/node-24/bin/node', script, `${d}:/usr/bin`)).toBe(`/opt/node-24/bin/node '${script}'`);
      // What the user's own PATH says still counts: a global install after npm's entries.
      expect(selfCommand('/opt/node-24/bin/node', script, `${d}:${join(dir, 'bin')}`)).toBe('tessera');
    }
  });

  test('shellQuote leaves plain words alone and single-quotes the rest', () => {
    expect(shellQuote('/usr/bin/node')).toBe('/usr/bin/node');
    expect(shellQuote("/a b/it's")).toBe(`'/a b/it'\\''s'`);
  });
});
