// The control plane's config file edited while it runs (audit 55a F15, F1): a file that no longer validates is warned
// with its code as a field (as every other coded warning) and counted by what the edit means; a FIFO swapped in
// is refused, not read (the read blocked the event loop for ever).
import { execFileSync } from 'node:child_process';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { loadControlPlaneConfig } from '../../../../control-plane/src/config/cp-config.js';
import type { ControlPlaneLogger } from '../../../../control-plane/src/logger.js';
import { type ConfigFileChange, warnOnConfigEdit } from '../../../../control-plane/src/lifecycle/config-file-watch.js';
import { makeTempDir } from '../../../helpers/run.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await makeTempDir()));
afterAll(async () => cleanup());

/** Waits (bounded: 200 × 25 ms) until `cond` holds. */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
  expect(cond()).toBe(true);
}

test('an edit into an invalid file: a warning with a code field, counted invalid; a FIFO swapped in: the same, unread', async () => {
  const file = join(dir, 'cp.yaml');
  const good = 'trustDomain: example.org\ndataDir: ./data\n';
  await writeFile(file, good);
  const warns: Record<string, unknown>[] = [];
  const changes: ConfigFileChange[] = [];
  const log = { warn: (o: Record<string, unknown>) => warns.push(o), info: () => {} } as unknown as ControlPlaneLogger;
  const watch = warnOnConfigEdit(loadControlPlaneConfig(file), { log, pollMs: 20, onChange: (c) => changes.push(c) });
  try {
    await writeFile(file, `${good}trustDomain: [oops\n`);
    await until(() => changes.length === 1);
    expect(changes).toEqual(['invalid']);
    expect(warns[0]).toMatchObject({ file, code: 'TESSERA_ERR_CONFIG_UNREADABLE' });
    await writeFile(file, good);
    await until(() => changes.length === 2);
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    await rm(file);
    await rename(fifo, file);
    // The removal may or may not be seen on its own ('gone') before the FIFO is.
    await until(() => changes.length >= 3 && changes.at(-1) === 'invalid');
    expect(changes[1]).toBe('restored');
    expect(warns.at(-1)).toMatchObject({ code: 'TESSERA_ERR_CONFIG_UNREADABLE', err: expect.stringContaining('not a regular file') });
  } finally {
    watch.close();
  }
});
