// FdWriter on real descriptors: a file, a non-blocking FIFO that takes bytes slowly (EAGAIN, partial writes), a
// FIFO nobody reads (the bound, close() by its deadline), and a descriptor that cannot be written (an error).
import { closeSync, constants, openSync, readlinkSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { FdWriter } from '../../../shared-io/fd-writer.js';
import { realTimers } from '../../../shared-io/timers.js';
import { fifoWithReader, readAll, readNow } from '../../helpers/fifo-read.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-fd-writer-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const noError = (err: Error) => {
  throw err;
};
/** `n` buffers of `size` bytes, each filled with its own index, so order and wholeness can be checked. */
const chunks = (n: number, size: number) => Array.from({ length: n }, (_, i) => Buffer.alloc(size, 65 + (i % 26)));
/** Whether this process's `fd` is open on `path` (fd numbers are reused, so the number alone says nothing). */
const openOn = (fd: number, path: string) => {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`) === path;
  } catch {
    return false;
  }
};
/** Waits until `fd` no longer refers to `path` (bounded: 200 tries of 10 ms). */
async function released(fd: number, path: string): Promise<void> {
  for (let i = 0; i < 200 && openOn(fd, path); i++) await new Promise((r) => setTimeout(r, 10));
  expect(openOn(fd, path)).toBe(false);
}

describe('FdWriter', () => {
  test('writes every buffer to a file, in order; idle() resolves once all are there; close() releases the fd', async () => {
    const file = join(dir, 'out.log');
    const fd = openSync(file, 'a');
    expect(openOn(fd, file)).toBe(true);
    const w = new FdWriter({ fd, ownsFd: true, maxQueuedBytes: 1 << 30, timers: realTimers, onError: noError });
    const bufs = chunks(200, 5000);
    for (const b of bufs) expect(w.write(b, 1)).toBe(true);
    await w.idle();
    expect((await readFile(file)).equals(Buffer.concat(bufs))).toBe(true);
    expect(await w.close(1000)).toBe(0);
    expect(w.write(Buffer.from('late'), 1)).toBe(false);
    await released(fd, file);
  });

  test('a non-blocking pipe that takes bytes slowly: EAGAIN and partial writes lose and reorder nothing; onWritten once per buffer written whole', async () => {
    const { path, reader } = fifoWithReader(dir, 'slow.fifo');
    const fd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
    try {
      let written = 0;
      const onWritten = () => {
        written++;
      };
      const w = new FdWriter({ fd, ownsFd: false, maxQueuedBytes: 1 << 30, timers: realTimers, onError: noError, onWritten });
      // 600 KB against a 64 KiB pipe: most writes meet a full pipe or one with room for part of the buffer.
      const bufs = chunks(20, 30_000);
      for (const b of bufs) w.write(b, 1);
      const got: Buffer[] = [];
      const scratch = Buffer.alloc(20_000);
      let idle = false;
      void w.idle().then(() => {
        idle = true;
      });
      for (let i = 0; i < 2000 && !idle; i++) {
        got.push(Buffer.from(scratch.subarray(0, readNow(reader, scratch))));
        await new Promise((r) => setTimeout(r, 5));
      }
      for (let n = readNow(reader, scratch); n > 0; n = readNow(reader, scratch)) got.push(Buffer.from(scratch.subarray(0, n)));
      expect(idle).toBe(true);
      expect(Buffer.concat(got).equals(Buffer.concat(bufs))).toBe(true);
      expect(written).toBe(bufs.length); // a buffer the pipe took in parts counts once, when its last part went
      expect(await w.close(1000)).toBe(0);
      expect(openOn(fd, path)).toBe(true); // not its fd to close
    } finally {
      closeSync(reader);
      closeSync(fd);
    }
  });

  test('a full non-blocking pipe is tried again after 1 ms, then 2, 4 … up to 64; a write that gets through starts over at 1', async () => {
    const { path, reader } = fifoWithReader(dir, 'full.fifo');
    const fd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
    try {
      const delays: number[] = [];
      // Waits are recorded, not waited: each retry runs on the next turn.
      const timers = {
        setTimeout: (fn: () => void, ms: number) => {
          delays.push(ms);
          return setImmediate(fn);
        },
        clearTimeout: (h: unknown) => clearImmediate(h as NodeJS.Immediate),
      };
      const w = new FdWriter({ fd, ownsFd: false, maxQueuedBytes: 1 << 30, timers, onError: noError });
      w.write(Buffer.alloc(200_000, 1), 1); // a pipe's 64 KiB goes at once, then the pipe is full
      for (let i = 0; i < 500 && delays.length < 9; i++) await new Promise((r) => setTimeout(r, 2));
      expect(delays.slice(0, 9)).toEqual([1, 2, 4, 8, 16, 32, 64, 64, 64]);
      const seen = delays.length;
      readAll(reader); // room again: the next retry writes, and the wait after the pipe fills again is 1 ms
      for (let i = 0; i < 500 && delays.length < seen + 3; i++) await new Promise((r) => setTimeout(r, 2));
      expect(delays.slice(seen)).toContain(1);
      readAll(reader);
      await w.close(0);
    } finally {
      closeSync(reader);
      closeSync(fd);
    }
  });

  test('bounded: with the destination taking nothing, a buffer over maxQueuedBytes is refused; close() ends by its deadline and counts what was not written whole', async () => {
    const { path, reader } = fifoWithReader(dir, 'stalled.fifo');
    const fd = openSync(path, 'a'); // blocking, like a log file on a stalled pipe: the write that fills it blocks
    try {
      const w = new FdWriter({ fd, ownsFd: true, maxQueuedBytes: 300_000, timers: realTimers, onError: noError });
      const bufs = chunks(4, 70_000); // the first fills the 64 KiB pipe and blocks; the rest wait behind it
      for (const b of bufs) expect(w.write(b, 10)).toBe(true);
      expect(w.write(Buffer.alloc(30_000), 10)).toBe(false); // 280 000 + 30 000 > 300 000
      expect(w.write(Buffer.alloc(20_000), 10)).toBe(true);
      const started = Date.now();
      expect(await w.close(150)).toBe(50); // none written whole: the blocked one and the four behind it
      expect(Date.now() - started).toBeLessThan(5000);
      expect(w.write(Buffer.alloc(1), 1)).toBe(false);
    } finally {
      closeSync(reader); // the blocked write now fails (EPIPE), and the writer closes its fd after it
    }
    await released(fd, path);
  });

  test('a write that fails reports the error and what was lost, then refuses everything; idle() does not hang', async () => {
    const file = join(dir, 'ro.log');
    closeSync(openSync(file, 'w'));
    const fd = openSync(file, 'r'); // EBADF on write
    const errors: { code: string | undefined; lost: number }[] = [];
    const w = new FdWriter({ fd, ownsFd: true, maxQueuedBytes: 1 << 20, timers: realTimers, onError: (e, lost) => errors.push({ code: e.code, lost }) });
    w.write(Buffer.from('a'), 3);
    w.write(Buffer.from('b'), 4);
    await w.idle();
    expect(errors).toEqual([{ code: 'EBADF', lost: 7 }]);
    expect(w.write(Buffer.from('c'), 1)).toBe(false);
    expect(await w.close(1000)).toBe(0);
  });
});
