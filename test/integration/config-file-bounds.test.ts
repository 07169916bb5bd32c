// Config files and the files flags name are read bounded (audit 55a F1, F7): `--config /dev/zero`, a FIFO or a file
// of 100 MB is refused at once, with the code and the file named, before any of it is read whole (they grew memory
// without limit, or hung, deaf to SIGTERM); a data dir under /proc is refused rather than spun on for ever. Each
// through the real binary: the hang and the growth were the process's, not a function's.
import { execFileSync } from 'node:child_process';
import { truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { makeTempDir, tessera } from '../helpers/run.js';

let dir: string;
let cleanup: () => Promise<void>;
let fifo: string;
let big: string;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  fifo = join(dir, 'fifo.yaml');
  execFileSync('mkfifo', [fifo]);
  // Sparse: 100 MB of size, no disk.
  big = join(dir, 'big.yaml');
  await writeFile(big, 'x: 1\n');
  await truncate(big, 100 << 20);
});
afterAll(async () => cleanup());

/** Exit 1 with one coded line naming the file; a process that hung or grew would hit the timeout instead. */
async function expectRefused(args: string[], code: string, text: string): Promise<void> {
  const r = await tessera(args, { cwd: dir, timeoutMs: 15_000 });
  expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(1);
  expect(r.stderr).toContain(`${code}: ${text}`);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

const NOT_REGULAR = 'not a regular file (a FIFO, a device or a directory)';
const TOO_LARGE = 'over 1048576 bytes, the most it may be';

describe.concurrent('bounded reads', () => {
  for (const command of ['proxy', 'control-plane', 'injector']) {
    test(`tessera ${command}: --config /dev/zero, a FIFO and a 100 MB file are refused unread`, async () => {
      await expectRefused([command, '--config', '/dev/zero'], 'TESSERA_ERR_CONFIG_UNREADABLE', `config /dev/zero: ${NOT_REGULAR}`);
      await expectRefused([command, '--config', fifo], 'TESSERA_ERR_CONFIG_UNREADABLE', `config ${fifo}: ${NOT_REGULAR}`);
      await expectRefused([command, '--config', big], 'TESSERA_ERR_CONFIG_UNREADABLE', `config ${big}: ${TOO_LARGE}`);
    });
  }

  test('a file flag of a one-shot command: /dev/zero, a FIFO and a 100 MB file are refused unread', async () => {
    await expectRefused(['svid', 'verify', '--bundle', '/dev/zero', big], 'TESSERA_ERR_CLI_FILE_UNREADABLE', `--bundle /dev/zero: ${NOT_REGULAR}`);
    await expectRefused(['svid', 'verify', '--bundle', fifo, big], 'TESSERA_ERR_CLI_FILE_UNREADABLE', `--bundle ${fifo}: ${NOT_REGULAR}`);
    await expectRefused(['svid', 'verify', '--bundle', big, big], 'TESSERA_ERR_CLI_FILE_UNREADABLE', `--bundle ${big}: over 4194304 bytes, the most it may be`);
  });

  test('a dataDir under /proc is refused with its code and key, not spun on', async () => {
    const cp = join(dir, 'cp.yaml');
    await writeFile(cp, ['trustDomain: example.org', 'dataDir: /proc/tessera-no-such-process/data', 'listen: 127.0.0.1:0', 'adminListen: 127.0.0.1:0', ''].join('\n'));
    await expectRefused(['control-plane', '--config', cp], 'TESSERA_ERR_CP_DATA_DIR', 'dataDir /proc/tessera-no-such-process/data: cannot create /proc/tessera-no-such-process: its file system makes no directories there');
  });
});
