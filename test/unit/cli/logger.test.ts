// The operational logger: JSON lines with string levels; the asynchronous one (the proxy's) holds a bounded amount
// while its destination takes nothing, and drops beyond it (a real FIFO whose reader never reads).
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { MAX_BUFFERED_LOG_BYTES, createLogger } from '../../../cli/logger.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-logger-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A FIFO with a reader that reads only when asked: the write end as an fd, and the read end. */
function fifo(): { readonly writeFd: number; readonly readFd: number } {
  const path = join(dir, 'log.fifo');
  execFileSync('mkfifo', [path]);
  const readFd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  return { readFd, writeFd: openSync(path, 'w') };
}

describe('operational logger', () => {
  test('lines are JSON with a string level and the component', async () => {
    const { readFd, writeFd } = fifo();
    try {
      const log = createLogger({ level: 'info', component: 'tessera-test', sync: true, fd: writeFd });
      log.info({ listener: 'app' }, 'hello');
      const b = Buffer.alloc(4096);
      const line = JSON.parse(b.subarray(0, readSync(readFd, b)).toString('utf8')) as Record<string, unknown>;
      expect(line).toMatchObject({ level: 'info', component: 'tessera-test', listener: 'app', msg: 'hello' });
    } finally {
      closeSync(readFd);
      closeSync(writeFd);
    }
  });

  test('asynchronous: while the destination takes nothing, lines past the bound are dropped, not held', async () => {
    const { readFd, writeFd } = fifo();
    try {
      const log = createLogger({ level: 'info', component: 'tessera-test', sync: false, fd: writeFd });
      const dest = (log as unknown as Record<symbol, NodeJS.EventEmitter>)[pino.symbols.streamSym]!;
      let droppedBytes = 0;
      dest.on('drop', (data: string) => {
        droppedBytes += Buffer.byteLength(data);
      });
      const detail = 'x'.repeat(1_000);
      const lines = Math.ceil((MAX_BUFFERED_LOG_BYTES * 1.5) / detail.length);
      for (let i = 0; i < lines; i++) log.info({ detail }, 'inbound peer refused');
      // Well past the bound was logged; at most the bound (and what the pipe took) was kept.
      expect(droppedBytes).toBeGreaterThan(MAX_BUFFERED_LOG_BYTES * 0.4);
    } finally {
      closeSync(readFd);
    }
  });
});
