// Crash-safe writes: the target holds the old or the new content, created with its final mode (keys never exist
// world-readable, even for an instant), and no temporary file survives a write that failed.
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { TMP_MARKER, writeFileAtomicSync } from '../../../../control-plane/src/ca/atomic-file.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';

describe('writeFileAtomicSync', () => {
  const tmp = tempDirPerTest();

  test('replaces the content whole, keeps the requested mode, and leaves no temporary file', () => {
    const f = join(tmp.dir, 'ca.key');
    writeFileAtomicSync(f, 'first', 0o600);
    writeFileAtomicSync(f, Buffer.from('second, longer'), 0o600);
    expect(readFileSync(f, 'utf8')).toBe('second, longer');
    expect(statSync(f).mode & 0o777).toBe(0o600);
    expect(readdirSync(tmp.dir)).toEqual(['ca.key']);
  });

  test('the default mode is 0644 and a large payload is written completely', () => {
    const f = join(tmp.dir, 'bundle.pem');
    const big = Buffer.alloc(3 * 1024 * 1024, 'x');
    writeFileAtomicSync(f, big);
    expect(statSync(f).mode & 0o777).toBe(0o644);
    expect(readFileSync(f).equals(big)).toBe(true);
  });

  test('a write that cannot land leaves the previous content, and the temporary file carries the marker a restart sweeps', () => {
    const target = join(tmp.dir, 'state');
    mkdirSync(target); // a directory in the way: the rename fails
    writeFileSync(join(target, 'inside'), 'old');
    expect(() => writeFileAtomicSync(target, 'new')).toThrow();
    expect(readFileSync(join(target, 'inside'), 'utf8')).toBe('old');
    expect(readdirSync(tmp.dir).filter((n) => n !== 'state').every((n) => n.startsWith(`state${TMP_MARKER}`))).toBe(true);
  });

  test('a missing directory is an error, not a partial file elsewhere', () => {
    expect(() => writeFileAtomicSync(join(tmp.dir, 'no', 'such'), 'x')).toThrow(/ENOENT/);
    expect(readdirSync(tmp.dir)).toEqual([]);
  });
});
