// Access-log outages on real destinations: a FIFO nobody reads yet (start-up must not block in open(2)), a reader
// that holds the FIFO open and never reads (close() must leave no write behind), a reader that goes away and
// another that comes (EPIPE, then the log reopens by itself), /dev/full (ENOSPC), and paths that stay errors.
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import type { AccessLogProblem, AccessLogResumed } from '../../../../proxy/src/telemetry/access-log-destination.js';
import { type AccessEntry, type AccessLog, createAccessLog } from '../../../../proxy/src/telemetry/access-log.js';
import { fifoWithReader, readAll } from '../../../helpers/fifo-read.js';
import { startTestProcess } from '../../../helpers/ready-process.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-access-log-outages-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const clock = { nowMs: () => 1_767_225_600_123 };
const entry = (requestId: string): AccessEntry => ({ requestId, direction: 'inbound', protocol: 'http1', durationMs: 1 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ids = (b: Buffer) =>
  b
    .toString('utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { requestId: string }).requestId);

/** Every report, in order. */
function reports() {
  const got: (['problem', AccessLogProblem] | ['resumed', AccessLogResumed])[] = [];
  return { got, onProblem: (p: AccessLogProblem) => void got.push(['problem', p]), onResume: (r: AccessLogResumed) => void got.push(['resumed', r]) };
}

/**
 * Writes a line (`prefix-N`) and flushes until `reader` holds something, the log having reopened (bounded: 300
 * tries of 10 ms); what the reader got.
 */
async function writeUntilRead(log: AccessLog, reader: number, prefix: string): Promise<Buffer> {
  const got: Buffer[] = [];
  for (let i = 0; i < 300 && got.length === 0; i++) {
    log.write(entry(`${prefix}-${i}`));
    await log.flush();
    const b = readAll(reader);
    if (b.length > 0) got.push(b);
    else await sleep(10);
  }
  return Buffer.concat(got);
}

/** How many of this process's fds are open on `path`. */
const fdsOn = (path: string) =>
  readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path;
    } catch {
      return false;
    }
  }).length;

describe('access log on a FIFO', () => {
  test('no reader yet: creation returns at once, lines are counted dropped, and once a reader opens lines reach it', async () => {
    const fifo = join(dir, 'later.fifo');
    execFileSync('mkfifo', [fifo]);
    // A code that blocks in open(2) would hang this test's process for good; this opens the FIFO for reading after
    // 5 s so that it ends (and fails) instead.
    const guard = await startTestProcess({ name: 'fifo-guard', command: 'sh', args: ['-c', 'sleep 5 >/dev/null 2>&1; exec 3<"$0"; sleep 1 >/dev/null 2>&1', fifo], ownGroup: true });
    const r = reports();
    let reader: number | undefined;
    try {
      const log = createAccessLog({ destination: fifo, clock, reopenMs: 20, onProblem: r.onProblem, onResume: r.onResume });
      expect(r.got).toEqual([['problem', { destination: fifo, code: 'ENXIO' }]]);
      log.write(entry('early-1'));
      log.write(entry('early-2'));
      await log.flush();
      expect(log.dropped()).toBe(2);
      reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
      const got = ids(await writeUntilRead(log, reader, 'late'));
      expect(got.length).toBeGreaterThan(0);
      expect(got.every((id) => id.startsWith('late-'))).toBe(true);
      expect(r.got).toHaveLength(2);
      expect(r.got[1]).toEqual(['resumed', { destination: fifo, droppedLines: log.dropped() }]);
      await log.close();
    } finally {
      if (reader !== undefined) closeSync(reader);
      await guard.stop({ signal: 'SIGKILL' });
    }
  });

  test('a reader that never reads: close() ends by its bound and leaves no write holding the FIFO', async () => {
    const { path: fifo, reader } = fifoWithReader(dir, 'stalled.fifo');
    try {
      const log = createAccessLog({ destination: fifo, clock, closeTimeoutMs: 200 });
      expect(fdsOn(fifo)).toBe(2); // the reader and the log
      for (let i = 0; i < 3000; i++) log.write(entry(String(i).padStart(6, '0'))); // several pipes' worth
      await log.close();
      expect(log.dropped()).toBeGreaterThan(0);
      // A write blocked in the thread pool would keep its fd (and the process) until the reader went away.
      for (let i = 0; i < 200 && fdsOn(fifo) > 1; i++) await sleep(10);
      expect(fdsOn(fifo)).toBe(1);
    } finally {
      closeSync(reader);
    }
  });

  test('the reader goes away (EPIPE): reported once, lines dropped meanwhile, and a new reader gets whole lines and a resume is reported', async () => {
    const first = fifoWithReader(dir, 'restart.fifo');
    const fifo = first.path;
    const r = reports();
    let second: number | undefined;
    try {
      const log = createAccessLog({ destination: fifo, clock, reopenMs: 20, onProblem: r.onProblem, onResume: r.onResume });
      log.write(entry('a'));
      await log.flush();
      expect(ids(readAll(first.reader))).toEqual(['a']);
      closeSync(first.reader);
      log.write(entry('b'));
      await log.flush(); // EPIPE: nobody reads
      for (let i = 0; i < 200 && r.got.length === 0; i++) await sleep(10);
      expect(r.got).toEqual([['problem', { destination: fifo, code: 'EPIPE' }]]);
      log.write(entry('c'));
      second = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
      const got = ids(await writeUntilRead(log, second, 'later'));
      expect(got.length).toBeGreaterThan(0);
      expect(got.every((id) => id.startsWith('later-'))).toBe(true);
      expect(log.dropped()).toBeGreaterThanOrEqual(2); // b and c at least
      expect(r.got).toEqual([
        ['problem', { destination: fifo, code: 'EPIPE' }],
        ['resumed', { destination: fifo, droppedLines: log.dropped() }],
      ]);
      await log.close();
    } finally {
      if (second !== undefined) closeSync(second);
    }
  });
});

describe('access log on a destination whose writes fail', () => {
  test('/dev/full (ENOSPC): reported once however many reopens and writes fail; every line counted dropped', async () => {
    const r = reports();
    const log = createAccessLog({ destination: '/dev/full', clock, reopenMs: 10, onProblem: r.onProblem, onResume: r.onResume });
    let written = 0;
    // Lines over many reopen periods: each reopen succeeds and its first write fails again.
    for (let i = 0; i < 30; i++) {
      log.write(entry(String(i)));
      written++;
      await log.flush();
      await sleep(10);
    }
    await log.close();
    expect(r.got).toEqual([['problem', { destination: '/dev/full', code: 'ENOSPC' }]]);
    expect(log.dropped()).toBe(written);
  });

  test('a path that cannot be opened for any other reason still fails at creation: a directory, a missing directory, a Unix socket', async () => {
    await mkdir(join(dir, 'a-dir'));
    const server = createServer();
    const socket = join(dir, 'a.sock');
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    try {
      for (const destination of [join(dir, 'a-dir'), join(dir, 'missing', 'access.log'), socket]) {
        let err: unknown;
        try {
          createAccessLog({ destination, clock });
        } catch (e) {
          err = e;
        }
        expect(isTesseraError(err, 'TESSERA_ERR_ACCESS_LOG_UNWRITABLE'), destination).toBe(true);
      }
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
