// `tessera ca activate` soon after `ca prepare` warns when a bundle endpoint serves federated peers (audit 54b F3):
// a peer fetches the new root only at its next fetch (the bundle's refresh hint, 300 s), and with https_spiffe an
// activation before that locks out every peer that has not fetched in between. Real control-plane processes and the
// real CLI: with a bundle endpoint, the activate a moment after the prepare succeeds and prints the warning (time
// since the prepare against the refresh hint) on stderr, also with --json; without federation it prints none.

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type RunningControlPlane, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { freePort } from '../helpers/free-port.js';
import { makeTempDir, tessera } from '../helpers/run.js';

let cleanup: () => Promise<void>;
let federated: RunningControlPlane;
let alone: RunningControlPlane;

beforeAll(async () => {
  let dir: string;
  ({ dir, cleanup } = await makeTempDir());
  const fedDir = join(dir, 'federated');
  const aloneDir = join(dir, 'alone');
  const fedFile = await writeControlPlaneConfig(fedDir, `federation:\n  bundleEndpoint: { listen: 127.0.0.1:${await freePort()} }`);
  const aloneFile = await writeControlPlaneConfig(aloneDir);
  [federated, alone] = await Promise.all([startControlPlaneProcess(fedDir, fedFile), startControlPlaneProcess(aloneDir, aloneFile)]);
}, 60_000);

afterAll(async () => {
  await federated?.stop();
  await alone?.stop();
  await cleanup?.();
});

const WARNING = /^warning: authority (\S+) was prepared (\d+)s ago, less than the bundle's refresh hint \(300s\)/m;

describe('ca activate right after ca prepare', () => {
  test('with a bundle endpoint (https_spiffe): activated, with a warning naming the time since the prepare and the refresh hint', async () => {
    const prepared = await tessera(['ca', 'prepare', '--data-dir', federated.dataDir, '--json']);
    expect(prepared.code, prepared.stderr).toBe(0);
    const id = (JSON.parse(prepared.stdout) as { prepared: string }).prepared;
    const activated = await tessera(['ca', 'activate', '--data-dir', federated.dataDir]);
    expect(activated.code, activated.stderr).toBe(0);
    expect(activated.stdout).toContain(`activated authority ${id}`);
    const m = WARNING.exec(activated.stderr);
    expect(m, activated.stderr).not.toBeNull();
    expect(m![1]).toBe(id);
    expect(Number(m![2])).toBeLessThan(300);
    // The endpoint does not switch at activate: it keeps the retired authority's SVID until that is removed (audit 55b F1).
    expect(activated.stderr).toContain('the endpoint keeps presenting an SVID of the retired authority until that is removed');
    expect(activated.stderr).toContain('needs a new bootstrap bundle');

    // --json: the same warning on stderr and in the answer; stdout stays one JSON document.
    const again = await tessera(['ca', 'prepare', '--data-dir', federated.dataDir, '--json']);
    expect(again.code, again.stderr).toBe(0);
    const json = await tessera(['ca', 'activate', '--data-dir', federated.dataDir, '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(json.stderr).toMatch(WARNING);
    expect((JSON.parse(json.stdout) as { warning?: string }).warning).toMatch(/refresh hint \(300s\)/);
  }, 60_000);

  test('without federation: no warning', async () => {
    expect((await tessera(['ca', 'prepare', '--data-dir', alone.dataDir])).code).toBe(0);
    const activated = await tessera(['ca', 'activate', '--data-dir', alone.dataDir]);
    expect(activated.code, activated.stderr).toBe(0);
    expect(activated.stderr).not.toContain('warning');
  }, 60_000);
});
