// The one process supervisor, against real child processes (node -e scripts): ready line and port, deadline,
// exit before ready, SIGTERM ignored → SIGKILL after the grace, reverse stop order, bounded output, own group,
// no child left behind when the parent exits.
import { readFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { TesseraError } from '../../../common/errors.js';
import { ProcessSupervisor } from '../../../shared-io/process-supervisor.js';
import { realTimers, type Timers } from '../../../shared-io/timers.js';
import { makeTempDir, REPO_ROOT, run } from '../../helpers/run.js';
import { until } from '../../helpers/until.js';

const node = (script: string, ...args: string[]) => ({ command: process.execPath, args: ['-e', script, ...args] });
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
});
afterAll(async () => cleanup?.());

describe('ProcessSupervisor', () => {
  test('waits for the ready line (whole lines, across chunks) and keeps the output before it', async () => {
    const sup = new ProcessSupervisor();
    const p = await sup.start({
      name: 'liner',
      ...node("process.stdout.write('starting\\nrea'); setTimeout(() => process.stdout.write('dy 42\\n'), 150); setInterval(() => {}, 1000)"),
      ready: { line: /^ready (\d+)$/ },
    });
    expect(p.readyLine).toBe('ready 42');
    expect(p.stdout()).toBe('starting\nready 42\n');
    expect(await p.stop()).toBe(null); // SIGTERM's default action: killed by the signal
    expect((await p.exited).signal).toBe('SIGTERM');
  });

  test('a ready line written straight to the log file (output: file) is found there', async () => {
    const sup = new ProcessSupervisor({ logDir: dir });
    const p = await sup.start({ name: 'to file', output: 'file', ...node("console.error('warming'); setTimeout(() => console.log('tessera x: ready'), 100); setInterval(() => {}, 1000)"), ready: { line: 'x: ready' } });
    expect(p.readyLine).toBe('tessera x: ready');
    expect(p.logFile).toBe(join(dir, 'to-file.log'));
    expect(p.stdout()).toBe(''); // nothing passes through this process
    await sup.stopAll();
    expect(await readFile(p.logFile!, 'utf8')).toBe('warming\ntessera x: ready\n');
  });

  test('waits for a port to accept connections', async () => {
    const sup = new ProcessSupervisor();
    const free = createServer();
    await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
    const port = (free.address() as AddressInfo).port;
    await new Promise((r) => free.close(r));
    const p = await sup.start({ name: 'listener', ...node(`setTimeout(() => require('net').createServer().listen(${port}, '127.0.0.1'), 200)`), ready: { port } });
    expect(p.readyLine).toBe(null);
    await sup.stopAll();
  });

  test('a missing working directory is named as such, and a command not on PATH says so with its log file', async () => {
    const sup = new ProcessSupervisor({ failureCode: 'TESSERA_ERR_UP_START_FAILED', logDir: dir });
    // spawn itself reports a missing cwd as "spawn <command> ENOENT", blaming the command.
    const noDir = (await sup.start({ name: 'app-x', ...node('0'), cwd: join(dir, 'nowhere'), ready: { port: 1 } }).catch((e) => e)) as TesseraError;
    expect(noDir.code).toBe('TESSERA_ERR_UP_START_FAILED');
    expect(noDir.message).toBe(`app-x could not start: its working directory ${join(dir, 'nowhere')} does not exist (or is not a directory)`);
    const noCmd = (await sup.start({ name: 'app-y', command: 'tessera-no-such-command', args: [], ready: { port: 1 } }).catch((e) => e)) as TesseraError;
    expect(noCmd.code).toBe('TESSERA_ERR_UP_START_FAILED');
    expect(noCmd.message).toBe(`app-y could not start: spawn tessera-no-such-command ENOENT: command "tessera-no-such-command" not found on PATH (log: ${join(dir, 'app-y.log')})`);
    expect(sup.pids()).toEqual([]);
  });

  test('the deadline fails the start with the output quoted, and the child is stopped', async () => {
    const sup = new ProcessSupervisor({ failureCode: 'TESSERA_ERR_UP_START_FAILED' });
    const started = Date.now();
    // 3 s: a child Node on a loaded machine may take a second or more before its first line (CI at load 9: over 1 s).
    const err = (await sup.start({ name: 'mute', ...node("console.log('pid', process.pid); setInterval(() => {}, 1000)"), ready: { line: /never/ }, readyTimeoutMs: 3_000 }).catch((e) => e)) as TesseraError;
    expect(err).toBeInstanceOf(TesseraError);
    expect(err.code).toBe('TESSERA_ERR_UP_START_FAILED');
    expect(err.message).toMatch(/^mute did not become ready within 3000 ms\npid \d+/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_990);
    const pid = Number(/pid (\d+)/.exec(err.message)![1]);
    expect(alive(pid)).toBe(false);
    expect(sup.pids()).toEqual([]);
  });

  test('a child that exits before it is ready fails the start at once, naming code and output', async () => {
    const sup = new ProcessSupervisor();
    const err = (await sup.start({ name: 'quitter', ...node("console.error('bad flag'); process.exit(3)"), ready: { line: /ready/ }, readyTimeoutMs: 20_000 }).catch((e) => e)) as TesseraError;
    expect(err.code).toBe('TESSERA_ERR_PROCESS_NOT_READY');
    expect(err.message).toBe('quitter exited before it was ready (code 3, signal null)\nbad flag');
  });

  test('a command that cannot be spawned fails the start', async () => {
    const sup = new ProcessSupervisor();
    const err = (await sup.start({ name: 'ghost', command: join(dir, 'no-such-binary'), args: [], ready: { line: /x/ } }).catch((e) => e)) as TesseraError;
    expect(err.code).toBe('TESSERA_ERR_PROCESS_NOT_READY');
    expect(err.message).toMatch(/^ghost could not start: .*ENOENT/);
  });

  test('SIGTERM ignored: SIGKILL after the grace, scheduled through the injected timers', async () => {
    const scheduled: number[] = [];
    const timers: Timers = {
      ...realTimers,
      setTimeout: (fn, ms) => {
        scheduled.push(ms);
        return realTimers.setTimeout(fn, ms);
      },
    };
    const sup = new ProcessSupervisor({ timers, graceMs: 400 });
    const p = await sup.start({ name: 'stubborn', ...node("process.on('SIGTERM', () => console.log('ignoring')); console.log('ready'); setInterval(() => {}, 1000)"), ready: { line: 'ready' } });
    const t0 = Date.now();
    expect(await p.stop()).toBe(null);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(390);
    expect((await p.exited).signal).toBe('SIGKILL');
    expect(p.stdout()).toContain('ignoring');
    expect(scheduled).toContain(400);
    expect(scheduled).toContain(20_000); // the ready deadline
  });

  test('stopAll stops newest first and waits for each; an exit it caused is not "unexpected"', async () => {
    const order = join(dir, 'order.txt');
    const sup = new ProcessSupervisor();
    const unexpected: string[] = [];
    sup.onUnexpectedExit((name) => unexpected.push(name));
    // Each child takes a while to stop: a stop that did not wait would interleave the lines.
    const script = "const fs = require('fs'); const [f, n] = process.argv.slice(1); process.on('SIGTERM', () => { fs.appendFileSync(f, n + ' begin\\n'); setTimeout(() => { fs.appendFileSync(f, n + ' end\\n'); process.exit(0); }, 100); }); console.log('ready'); setInterval(() => {}, 1000)";
    for (const name of ['a', 'b', 'c']) await sup.start({ name, ...node(script, order, name), ready: { line: 'ready' } });
    expect(sup.pids()).toHaveLength(3);
    await sup.stopAll();
    expect(await readFile(order, 'utf8')).toBe('c begin\nc end\nb begin\nb end\na begin\na end\n');
    expect(unexpected).toEqual([]);
    expect(sup.pids()).toEqual([]);
  });

  test('a started child that dies on its own is reported once', async () => {
    const sup = new ProcessSupervisor();
    const unexpected: string[] = [];
    sup.onUnexpectedExit((name, code) => unexpected.push(`${name} ${code}`));
    await sup.start({ name: 'short', ...node("console.log('ready'); setTimeout(() => process.exit(7), 100)"), ready: { line: 'ready' } });
    await until('the exit is reported', () => unexpected.length > 0, 10_000, 20);
    expect(unexpected).toEqual(['short 7']);
  });

  test('output kept in memory is bounded to the newest bytes; lines past the bound still match', async () => {
    const sup = new ProcessSupervisor({ logDir: dir });
    const p = await sup.start({
      name: 'chatty',
      ...node("for (let i = 0; i < 2000; i++) process.stdout.write('x'.repeat(99) + '\\n'); console.log('ready at last'); setInterval(() => {}, 1000)"),
      ready: { line: /^ready at last$/ },
      outputLimitChars: 10_000,
    });
    expect(p.stdout().length).toBeLessThanOrEqual(10_000);
    expect(p.stdout().endsWith('ready at last\n')).toBe(true);
    await sup.stopAll();
    expect((await readFile(p.logFile!, 'utf8')).length).toBe(2000 * 100 + 'ready at last\n'.length); // the log keeps it all
  });

  test('ownGroup: a stop reaches the children of the child too', async () => {
    const sup = new ProcessSupervisor();
    const p = await sup.start({
      name: 'parent',
      ownGroup: true,
      ...node("const c = require('child_process').spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }); process.on('SIGTERM', () => process.exit(0)); console.log('ready ' + c.pid); setInterval(() => {}, 1000)"),
      ready: { line: /^ready \d+$/ },
    });
    const grandchild = Number(p.readyLine!.split(' ')[1]);
    expect(alive(grandchild)).toBe(true);
    expect(await p.stop()).toBe(0);
    await until('the grandchild is gone', () => !alive(grandchild), 5_000, 20);
  });

  test('an abort stops everything, and a start after it fails with the aborted code', async () => {
    const ac = new AbortController();
    const sup = new ProcessSupervisor({ signal: ac.signal, abortedCode: 'TESSERA_ERR_BENCH_ABORTED' });
    const p = await sup.start({ name: 'job', ...node("console.log('ready'); setInterval(() => {}, 1000)"), ready: { line: 'ready' } });
    ac.abort();
    expect((await p.exited).signal).toBe('SIGTERM');
    const err = (await sup.start({ name: 'late', ...node('') }).catch((e) => e)) as TesseraError;
    expect(err.code).toBe('TESSERA_ERR_BENCH_ABORTED');
  });
});

test('the parent exiting without a stop (process.exit) leaves no child behind', async () => {
  // The built module, in a parent of its own that exits at once; its child must not outlive it.
  const built = join(REPO_ROOT, 'dist/shared-io/process-supervisor.js');
  const parent = `import { ProcessSupervisor } from ${JSON.stringify(pathToFileURL(built).href)};
const sup = new ProcessSupervisor();
const p = await sup.start({ name: 'orphan', command: process.execPath, args: ['-e', "console.log('ready'); setInterval(() => {}, 1000)"], ready: { line: 'ready' } });
console.log(p.pid);
process.exit(0);`;
  const r = await run(process.execPath, ['--input-type=module', '-e', parent]);
  expect(r.code, r.stderr).toBe(0);
  const pid = Number(r.stdout.trim());
  expect(pid).toBeGreaterThan(0);
  await until('the orphan is gone', () => !alive(pid), 5_000, 20);
});
