// WorkerPool's restarts with real child processes (a stand-in worker speaking the IPC protocol): a worker killed
// while every start fails is retried after the backoff, each failed attempt counted, shown in /config's view and
// logged with its reason, until a start succeeds; the edge certificate set a worker reported is in the next init.
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, expect, test } from 'vitest';
import { realTimers } from '../../../../shared-io/timers.js';
import { WorkerPool } from '../../../../proxy/src/workers/worker-pool.js';
import { makeTempDir } from '../../../helpers/run.js';
import { until } from '../../../helpers/until.js';

// Fails its start while FAIL_FILE exists; else reports an edge set (its slot in the PEM text) and listens. It
// writes the init's edge sets to INIT_FILE.<slot> so the test can see what a restarted worker was given.
const WORKER = `
const fs = require('node:fs');
process.on('message', (m) => {
  if (m.type === 'ping') return void process.send({ type: 'pong' });
  if (m.type !== 'init') return;
  const slot = process.env.TESSERA_PROXY_WORKER;
  fs.writeFileSync(process.env.INIT_FILE + '.' + slot, JSON.stringify(m.edgeCertificates ?? null));
  if (fs.existsSync(process.env.FAIL_FILE)) {
    process.send({ type: 'failed', code: 'TESSERA_ERR_EDGE_CERT_INVALID', message: 'the key does not match the certificate' }, () => process.exit(1));
    return;
  }
  process.send({ type: 'edge-certificates', listener: 'public', texts: { pairs: [{ cert: 'cert-from-' + slot, key: 'k' }] } });
  process.send({ type: 'listening', ports: {} });
});
`;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

test('failed restart attempts are retried after the backoff, counted and reported, until one succeeds', async () => {
  const { dir, cleanup } = await makeTempDir();
  cleanups.push(cleanup);
  const failFile = join(dir, 'fail');
  const initFile = join(dir, 'init');
  const failed: number[] = [];
  const restarted: number[] = [];
  const logged: { err?: string; retryInMs?: number; msg?: string }[] = [];
  const log = pino({ level: 'error' }, { write: (line: string) => void logged.push(JSON.parse(line)) });
  const pool = new WorkerPool({
    count: 2,
    command: process.execPath,
    args: ['-e', WORKER],
    env: { ...process.env, FAIL_FILE: failFile, INIT_FILE: initFile },
    configText: '',
    configFile: 'none.yaml',
    drainGraceMs: 2_000,
    timers: realTimers,
    nowMs: () => Date.now(),
    log,
    onRestart: (slot) => void restarted.push(slot),
    onRestartFailed: (slot) => void failed.push(slot),
    onHung: () => {},
    onRefused: () => {},
    backoff: { initialMs: 10, maxMs: 40 },
  });
  cleanups.push(() => pool.drain());
  await pool.start({});
  expect(pool.notReadyReason()).toBeUndefined();

  await writeFile(failFile, '');
  process.kill(pool.describe()[1]!.pid!, 'SIGKILL');
  await until('two failed restart attempts', () => pool.describe()[1]!.failedRestarts >= 2, 20_000, 10);
  expect(restarted).toEqual([1]);
  expect(failed.length).toBeGreaterThanOrEqual(2);
  expect(new Set(failed)).toEqual(new Set([1]));
  expect(pool.notReadyReason()).toBe('worker 1 is not listening');
  expect(pool.describe()[1]!.lastRestartError).toBe('proxy worker 1: the key does not match the certificate');
  const failure = logged.find((l) => l.msg === 'proxy worker restart failed');
  expect(failure?.err).toBe('proxy worker 1: the key does not match the certificate');
  expect(failure?.retryInMs).toBeGreaterThan(0);
  // The restarted worker was given the last set a worker reported.
  expect(JSON.parse(await readFile(`${initFile}.1`, 'utf8'))).toEqual({ public: { pairs: [{ cert: 'cert-from-1', key: 'k' }] } });

  await rm(failFile);
  await until('worker 1 back', () => pool.describe()[1]!.listening, 20_000, 10);
  expect(pool.notReadyReason()).toBeUndefined();
  const view = pool.describe()[1]!;
  expect(view.restarts).toBe(1);
  expect(view.lastRestartError).toBeNull();
  expect(view.failedRestarts).toBe(failed.length);
}, 30_000);

// An outside audit: a restarted worker stopped (SIGSTOP) before it listened left the slot not listening for good,
// uncounted and never retried. A start that stays silent past startTimeoutMs is killed and counted as failed.
test('a restart attempt that never listens is killed at startTimeoutMs, counted, and tried again', async () => {
  const { dir, cleanup } = await makeTempDir();
  cleanups.push(cleanup);
  const hangFile = join(dir, 'hang');
  // Listens unless HANG_FILE exists; then it stays silent (alive, never listening).
  const hanging = `process.on('message', (m) => { if (m.type === 'ping') return void process.send({ type: 'pong' }); if (m.type !== 'init') return; if (require('node:fs').existsSync(process.env.HANG_FILE)) return; process.send({ type: 'listening', ports: {} }); }); setInterval(() => {}, 1000);`;
  const failed: number[] = [];
  const pool = new WorkerPool({
    count: 2,
    command: process.execPath,
    args: ['-e', hanging],
    env: { ...process.env, HANG_FILE: hangFile },
    configText: '',
    configFile: 'none.yaml',
    drainGraceMs: 2_000,
    timers: realTimers,
    nowMs: () => Date.now(),
    log: pino({ level: 'silent' }),
    onRestart: () => {},
    onRestartFailed: (slot) => void failed.push(slot),
    onHung: () => {},
    onRefused: () => {},
    backoff: { initialMs: 10, maxMs: 40 },
    // Long enough for a node process to start on a loaded machine (the first start is timed too), short enough to wait.
    startTimeoutMs: 2_000,
  });
  cleanups.push(() => pool.drain());
  await pool.start({});
  await writeFile(hangFile, '');
  process.kill(pool.describe()[1]!.pid!, 'SIGKILL');
  await until('a hung start counted as failed', () => pool.describe()[1]!.failedRestarts >= 1, 20_000, 10);
  expect(pool.describe()[1]!.lastRestartError).toContain('did not listen within 2000 ms');
  await rm(hangFile);
  await until('worker 1 back', () => pool.describe()[1]!.listening, 20_000, 10);
  expect(pool.notReadyReason()).toBeUndefined();
}, 30_000);

// An outside audit: a serving worker stopped with SIGSTOP kept /ready 200 while its share of new connections hung.
// The primary pings every serving worker; silence for a period is not ready, silence for the kill time a restart.
test('a serving worker that stops answering is reported not ready, then killed, counted and restarted', async () => {
  const { dir, cleanup } = await makeTempDir();
  cleanups.push(cleanup);
  const hung: number[] = [];
  const restarted: number[] = [];
  const logged: { msg?: string; worker?: number }[] = [];
  const pool = new WorkerPool({
    count: 2,
    command: process.execPath,
    args: ['-e', WORKER],
    env: { ...process.env, FAIL_FILE: join(dir, 'fail'), INIT_FILE: join(dir, 'init') },
    configText: '',
    configFile: 'none.yaml',
    drainGraceMs: 2_000,
    timers: realTimers,
    nowMs: () => Date.now(),
    log: pino({ level: 'error' }, { write: (line: string) => void logged.push(JSON.parse(line)) }),
    onRestart: (slot) => void restarted.push(slot),
    onRestartFailed: () => {},
    onHung: (slot) => void hung.push(slot),
    onRefused: () => {},
    backoff: { initialMs: 10, maxMs: 40 },
    // Short rounds for the test; a kill after 20 of them, so that a machine loaded by parallel suites (a worker slow
    // to answer a round or two) does not kill a worker that answers.
    heartbeat: { periodMs: 200, killAfterMs: 4_000 },
  });
  cleanups.push(() => pool.drain());
  await pool.start({});
  // Pings answered: both workers are answering and ready.
  await until('both answering', () => pool.notReadyReason() === undefined && pool.describe().every((w) => w.answering), 10_000, 10);

  const stopped = pool.describe()[1]!.pid!;
  process.kill(stopped, 'SIGSTOP');
  await until('worker 1 reported silent', () => pool.notReadyReason() !== undefined, 10_000, 10);
  expect(pool.notReadyReason()).toMatch(/^worker 1 has not answered for \d+ s$/);
  expect(pool.describe()[1]!.answering).toBe(false);
  expect(hung).toEqual([]);

  await until('worker 1 replaced', () => pool.describe()[1]!.listening && pool.describe()[1]!.pid !== stopped, 20_000, 10);
  expect(hung).toEqual([1]);
  expect(restarted).toEqual([1]);
  expect(pool.describe()[0]!.restarts).toBe(0);
  expect(logged.some((l) => l.msg === 'proxy worker not answering; killing it' && l.worker === 1)).toBe(true);
  expect(() => process.kill(stopped, 0)).toThrow();
  await until('ready again', () => pool.notReadyReason() === undefined, 10_000, 10);
}, 30_000);
