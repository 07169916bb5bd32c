// The bounded reader every run-time file goes through: a regular file's text whatever its size hint says (a /proc
// file says 0; a file may grow after its fstat), null past the bound without reading on, and FIFOs, devices and
// directories refused without blocking.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { FileRefused, readAtMost, readSmallFile } from '../../../shared-io/bounded-read.js';
import { tempDirPerTest } from '../../helpers/temp-dir.js';

const tmp = tempDirPerTest();

test('the whole text, whatever the size hint; null one byte past the bound', () => {
  const f = join(tmp.dir, 'a.txt');
  const text = 'é'.repeat(3_000); // 6,000 bytes of UTF-8
  writeFileSync(f, text);
  for (const hint of [0, 1, 100, 6_000, 1 << 20]) {
    const fd = openSync(f, 'r');
    try {
      expect(readAtMost(fd, 6_000, hint), `hint ${hint}`).toBe(text);
    } finally {
      closeSync(fd);
    }
    const fd2 = openSync(f, 'r');
    try {
      expect(readAtMost(fd2, 5_999, hint), `hint ${hint}, bound 5,999`).toBeNull();
    } finally {
      closeSync(fd2);
    }
  }
  expect(readSmallFile(f, 6_000)).toBe(text);
  expect(() => readSmallFile(f, 100)).toThrow(FileRefused);
  expect(readSmallFile('/proc/self/status', 1 << 20)).toMatch(/^Name:/); // fstat says 0 bytes
});

test('a FIFO, a device and a directory are refused at once as not regular files', () => {
  const fifo = join(tmp.dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const zero = join(tmp.dir, 'zero');
  symlinkSync('/dev/zero', zero);
  const dir = join(tmp.dir, 'dir');
  mkdirSync(dir);
  for (const p of [fifo, zero, dir]) {
    try {
      readSmallFile(p, 1 << 20);
      expect.unreachable(p);
    } catch (e) {
      expect(e, p).toBeInstanceOf(FileRefused);
      expect((e as FileRefused).why).toBe('not_regular');
    }
  }
});
