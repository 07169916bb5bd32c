// The control plane's config file edited while it runs (audit 55a F15): a file that no longer validates is warned
// with its code as a field (as every other coded warning) and counted by what the edit means. A FIFO swapped in
// (audit 55a F1) is checked in a child process, where a read that blocks fails at a deadline rather than hanging
// this worker: test/integration/control-plane-config-watch.test.ts (audit 56c F4).
import { writeFile } from 'node:fs/promises';
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

test('an edit into an invalid file: a warning with a code field, counted invalid; fixed again: restored', async () => {
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
    expect(changes[1]).toBe('restored');
  } finally {
    watch.close();
  }
});
