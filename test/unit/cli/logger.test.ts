// The operational logger of the long-running commands: JSON lines with string levels, written asynchronously; while
// its destination takes nothing it holds a bounded amount and drops beyond it, and flushLogger() gives up after its
// bound (a real FIFO whose reader reads only when the test says).
import { closeSync, openSync, readSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { createLogger, flushLogger, logDestination, MAX_BUFFERED_LOG_BYTES } from '../../../cli/logger.js';
import { FakeTime } from '../../helpers/fake-time.js';
import { fifoWithReader, readAll } from '../../helpers/fifo-read.js';
import { startTestProcess } from '../../helpers/ready-process.js';
import { REPO_ROOT, run } from '../../helpers/run.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-logger-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A FIFO with a reader that reads only when asked: the write end as an fd, and the read end. */
function fifo(): { readonly writeFd: number; readonly readFd: number } {
  const { path, reader } = fifoWithReader(dir, 'log.fifo');
  return { readFd: reader, writeFd: openSync(path, 'w') };
}

/** Fills the pipe so that the next write blocks (a reader that stopped reading). */
function fillPipe(log: ReturnType<typeof createLogger>): void {
  const detail = 'x'.repeat(1_000);
  for (let i = 0; i < 200; i++) log.info({ detail }, 'filler');
}

/**
 * A logger on a FIFO whose pipe it has filled, and flushLogger (fake timers, bound `boundMs`) started on it 50 ms ago:
 * the read end (the test closes it), the clock, and whether the flush has resolved.
 */
async function flushOnFullPipe(boundMs: number): Promise<{ readonly readFd: number; readonly time: FakeTime; readonly state: { done: boolean } }> {
  const { readFd, writeFd } = fifo();
  const time = new FakeTime();
  const log = createLogger({ level: 'info', component: 'tessera-test', fd: writeFd });
  fillPipe(log);
  const state = { done: false };
  void flushLogger(log, boundMs, time).then(() => {
    state.done = true;
  });
  await new Promise((r) => setTimeout(r, 50));
  return { readFd, time, state };
}

describe('operational logger', () => {
  test('lines are JSON with a string level and the component; flushLogger resolves once they are written', async () => {
    const { readFd, writeFd } = fifo();
    try {
      const log = createLogger({ level: 'info', component: 'tessera-test', fd: writeFd });
      log.info({ listener: 'app' }, 'hello');
      await flushLogger(log);
      const b = Buffer.alloc(4096);
      const line = JSON.parse(b.subarray(0, readSync(readFd, b)).toString('utf8')) as Record<string, unknown>;
      expect(line).toMatchObject({ level: 'info', component: 'tessera-test', listener: 'app', msg: 'hello' });
    } finally {
      closeSync(readFd);
    }
  });

  test('while the destination takes nothing, lines past the bound are dropped, not held', async () => {
    const { readFd, writeFd } = fifo();
    try {
      const log = createLogger({ level: 'info', component: 'tessera-test', fd: writeFd });
      let droppedBytes = 0;
      logDestination(log).events.on('drop', (data: string) => {
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

  test('flushLogger waits for lines still being written, and resolves once a slow reader has taken them', async () => {
    const { readFd, state } = await flushOnFullPipe(60_000);
    try {
      expect(state.done).toBe(false); // the pipe is full and nobody reads
      const parts: Buffer[] = [];
      for (let i = 0; i < 500 && !state.done; i++) {
        parts.push(readAll(readFd));
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(state.done).toBe(true);
      parts.push(readAll(readFd)); // what the last write put in the pipe
      const lines = Buffer.concat(parts).toString('utf8').split('\n').filter((l) => l !== '');
      expect(lines).toHaveLength(200);
    } finally {
      closeSync(readFd);
    }
  });

  test('a process whose stderr nobody reads exits after flushLogger: the lines given up are not written at exit either', async () => {
    // Without release, pino's exit hook writes what waits synchronously as the process exits and, on a non-blocking
    // pipe (as Node's own child pipes are), retries EAGAIN forever. (A write stuck in the kernel on a blocking pipe
    // holds any Node process's exit: its I/O threads are joined. Not this case.)
    const { readFd, writeFd: blocking } = fifo();
    closeSync(blocking);
    const path = join(dir, 'log.fifo');
    const script = [
      "import { constants, openSync } from 'node:fs';",
      `const { createLogger, flushLogger } = await import(${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'dist/cli/logger.js')).href)});`,
      `const fd = openSync(${JSON.stringify(path)}, constants.O_WRONLY | constants.O_NONBLOCK);`,
      "const log = createLogger({ level: 'info', component: 'tessera-test', fd });",
      "for (let i = 0; i < 200; i++) log.info({ detail: 'x'.repeat(1000) }, 'filler');",
      'await flushLogger(log, 200);',
      "log.info({}, 'a late line');",
      'process.exit(0);',
    ].join('\n');
    // The test holds the FIFO's read end open and never reads it.
    const child = await startTestProcess({ name: 'stalled-stderr-child', command: process.execPath, args: ['--input-type=module', '-e', script] });
    try {
      const status = await Promise.race([child.exited, new Promise<null>((r) => setTimeout(() => r(null), 15_000))]);
      expect(status?.code).toBe(0);
    } finally {
      await child.stop({ graceMs: 0, signal: 'SIGKILL' }); // a failed run must not leave it spinning
      closeSync(readFd);
    }
  }, 20_000);

  test('flushLogger gives up after its bound when the destination takes nothing (the command still exits)', async () => {
    const { readFd, time, state } = await flushOnFullPipe(1_000);
    try {
      expect(state.done).toBe(false);
      time.advance(1_000);
      await new Promise((r) => setImmediate(r));
      expect(state.done).toBe(true);
    } finally {
      closeSync(readFd);
    }
  });
});

describe('logProcessWarnings', () => {
  // A collector answering 503 with Retry-After: 0 made the OTLP exporter set a -1 ms timer: Node printed its
  // TimeoutNegativeWarning as plain text on a stderr that holds JSON only (an outside audit).
  test("a real process: Node's warning comes out as one JSON line of the log, and nothing else is on stderr", async () => {
    const script = [
      `const { createLogger, flushLogger, logProcessWarnings } = await import(${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'dist/cli/logger.js')).href)});`,
      "const log = createLogger({ level: 'info', component: 't' });",
      'logProcessWarnings(process, log);',
      'setTimeout(() => {}, -1);',
      'await new Promise((r) => setTimeout(r, 50));',
      'await flushLogger(log);',
    ].join('\n');
    const r = await run(process.execPath, ['--input-type=module', '-e', script], { timeoutMs: 10_000 });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'warn', msg: 'Node.js warning', warning: 'TimeoutNegativeWarning' });
  });
});
