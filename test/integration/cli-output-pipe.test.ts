// The built `tessera` CLI writing into real pipes (audit 54b F2): every byte of stdout and stderr reaches a reader,
// however slowly it reads (`| (sleep 2; wc -c)`), with the command's own exit status; before, the process exited
// with whatever the pipe had not taken yet (64 KiB, sometimes 128 KiB) dropped and status 0. A reader that closes
// early (`| head -1`) ends it quietly (status 141, as SIGPIPE ends other tools: no stack trace, no hang); a stop
// asked for while the output waits for a reader that takes nothing ends the wait. Real shells, real child processes.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { TEST_CONFIG, testBundlePem } from '../helpers/injector-fixtures.js';
import { makeTempDir, run, TESSERA_BIN } from '../helpers/run.js';

/** A ConfigMap's name of 210 characters (a name may have 253): a report line of ~250 bytes. */
function mapName(i: number): string {
  return `map-${i}-${'x'.repeat(200)}`;
}

let dir: string;
let cleanup: () => Promise<void>;
/**
 * `tessera inject` over 150 pods and 500 ConfigMaps with long names: 0.75 MiB of YAML on stdout, 135 KiB of report
 * lines on stderr. Bytes, not documents, fill a pipe: 500 long names give the report bytes 2000 short ones gave, at
 * a quarter of the documents to parse (~1.05 CPU-s a run instead of ~1.65).
 */
let injectArgs: string[];
let fullOut: Buffer;
let fullErr: Buffer;
/** The report line of the last document: the command has written everything once it is on stderr. */
const LAST_REPORT = `ConfigMap ${mapName(499)}: passed-through`;

/** Words of a shell command line, each quoted. */
const quoted = (words: readonly string[]) => words.map((w) => `'${w.replaceAll("'", "'\\''")}'`).join(' ');
const tesseraLine = (args: readonly string[]) => quoted([process.execPath, TESSERA_BIN, ...args]);

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  await writeFile(join(dir, 'bundle.pem'), await testBundlePem());
  const pods = Array.from({ length: 150 }, (_, i) => `apiVersion: v1\nkind: Pod\nmetadata:\n  name: pod-${i}\nspec:\n  containers:\n    - name: app\n      image: app:1\n`);
  const maps = Array.from({ length: 500 }, (_, i) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${mapName(i)}\ndata:\n  a: b\n`);
  await writeFile(join(dir, 'pods.yaml'), [...pods, ...maps].join('---\n'));
  injectArgs = ['inject', '-f', join(dir, 'pods.yaml'), '--bundle', join(dir, 'bundle.pem'), '--image', TEST_CONFIG.proxyImage];
  // Into files (written synchronously by Node): the whole output, the reference for the pipes.
  const r = await run('bash', ['-c', `${tesseraLine(injectArgs)} > out 2> err`], { cwd: dir, timeoutMs: 60_000 });
  expect(r.code, r.stderr).toBe(0);
  fullOut = await readFile(join(dir, 'out'));
  fullErr = await readFile(join(dir, 'err'));
  expect(fullOut.length).toBeGreaterThan(512 << 10);
  expect(fullErr.length).toBeGreaterThan(96 << 10);
}, 90_000);
afterAll(async () => cleanup?.());

test('stdout into a pipe read slowly arrives whole, exit status 0 (was cut at 64 KiB)', async () => {
  const r = await run('bash', ['-c', `${tesseraLine(injectArgs)} 2>/dev/null | (sleep 2; wc -c); echo "status \${PIPESTATUS[0]}"`], { timeoutMs: 60_000 });
  expect(r.stdout.trim().split(/\s+/)).toEqual([String(fullOut.length), 'status', '0']);
}, 70_000);

test('stderr into a pipe read slowly arrives whole; stdout and stderr into one slow pipe too', async () => {
  const errOnly = await run('bash', ['-c', `${tesseraLine(injectArgs)} 2>&1 >/dev/null | (sleep 2; wc -c); echo "status \${PIPESTATUS[0]}"`], { timeoutMs: 60_000 });
  expect(errOnly.stdout.trim().split(/\s+/)).toEqual([String(fullErr.length), 'status', '0']);
  const both = await run('bash', ['-c', `${tesseraLine(injectArgs)} 2>&1 | (sleep 2; wc -c); echo "status \${PIPESTATUS[0]}"`], { timeoutMs: 60_000 });
  expect(both.stdout.trim().split(/\s+/)).toEqual([String(fullOut.length + fullErr.length), 'status', '0']);
}, 130_000);

test('the bytes are the same as into a file, stdout and stderr each through its own slow pipe', async () => {
  // stderr leaves the group on fd 3, into the outer pipe; the shell waits for both readers.
  const line = `{ ${tesseraLine(injectArgs)} 2>&3 | (sleep 2; cat > out-piped); echo "status \${PIPESTATUS[0]}" > status; } 3>&1 >/dev/null | (sleep 2; cat > err-piped)`;
  const r = await run('bash', ['-c', line], { cwd: dir, timeoutMs: 60_000 });
  expect(r.code, r.stderr).toBe(0);
  expect((await readFile(join(dir, 'status'), 'utf8')).trim()).toBe('status 0');
  expect((await readFile(join(dir, 'out-piped'))).equals(fullOut)).toBe(true);
  expect((await readFile(join(dir, 'err-piped'))).equals(fullErr)).toBe(true);
}, 70_000);

test("a command's own non-zero status survives a slow reader: a usage error's help arrives whole, exit 2", async () => {
  const args = [...injectArgs, '--pull-policy', 'Sometimes'];
  const direct = await run('bash', ['-c', `${tesseraLine(args)} 2> usage-err`], { cwd: dir, timeoutMs: 60_000 });
  expect(direct.code).toBe(2);
  const help = await readFile(join(dir, 'usage-err'));
  const r = await run('bash', ['-c', `${tesseraLine(args)} 2>&1 | (sleep 2; wc -c); echo "status \${PIPESTATUS[0]}"`], { timeoutMs: 60_000 });
  expect(r.stdout.trim().split(/\s+/)).toEqual([String(help.length), 'status', '2']);
}, 70_000);

test('a reader that closes early (| head -1) ends tessera quietly with 141: no stack trace, no hang', async () => {
  for (const redirect of ['2>tessera-err', '2>&1']) {
    const r = await run('bash', ['-c', `${tesseraLine(injectArgs)} ${redirect} | head -1; echo "status \${PIPESTATUS[0]}" >&2`], { cwd: dir, timeoutMs: 60_000 });
    expect(r.stdout).toBe('apiVersion: v1\n');
    expect(r.stderr.trim()).toBe('status 141');
  }
  expect((await readFile(join(dir, 'tessera-err'), 'utf8')).match(/EPIPE|Error|at /g) ?? []).toEqual([]);
}, 70_000);

test('a stop asked for while the output waits for a reader that takes nothing ends tessera with the signal status', async () => {
  // A FIFO held open for reading and never read: the command writes everything, returns, and its output waits.
  const script = [
    'mkfifo stalled',
    'exec 3<> stalled',
    `${tesseraLine(injectArgs)} > stalled 2> stall-err &`,
    'pid=$!',
    `for i in $(seq 600); do grep -q '${LAST_REPORT}' stall-err && break; sleep 0.1; done`,
    // Still running, its output not taken: the wait it is in is what the signal must end.
    'kill -0 "$pid" && echo running',
    'kill -TERM "$pid"',
    'wait "$pid"; echo "status $?"',
  ].join('\n');
  const r = await run('bash', ['-c', script], { cwd: dir, timeoutMs: 60_000 });
  expect(r.stdout.trim().split('\n')).toEqual(['running', 'status 143']);
}, 70_000);
