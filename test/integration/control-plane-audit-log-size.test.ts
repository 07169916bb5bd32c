// audit.log is bounded by the running control plane (audit 53c F4): with audit.logMaxBytes set, renewals over mTLS
// against the real `tessera control-plane` process write past the size, and the file is cut into audit.log.1 with
// every issued serial in one of the two files, each line whole JSON, both 0600 and under the size. Before the fix
// the key did not exist (the process refused the config) and audit.log only grew.
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair } from '../../common/pki/keys.js';
import { type RunningControlPlane, TD, controlPlaneClients, joinTokenSvid, signSvid, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { makeTempDir } from '../helpers/run.js';

const MAX = 65_536;
/** ~330-byte svid.issued lines: 600 of them are three files' worth, so .1 is made and then replaced. */
const RENEWALS = 600;
let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  // A bucket large enough for the loop: the rate limit is not what this test is about.
  cp = await startControlPlaneProcess(dir, await writeControlPlaneConfig(dir, `audit: { logMaxBytes: ${MAX} }\nsvid:\n  rateLimit: { burst: 1000, perMinute: 100000 }`));
});
afterAll(async () => {
  const code = await cp?.stop();
  await cleanup();
  expect(code).toBe(0);
});

const lines = async (file: string) => (await readFile(file, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { event: string; serial?: string });

test('renewals past audit.logMaxBytes: audit.log is cut into audit.log.1; whole lines, the newest ones all kept in order, 0600, under the size', async () => {
  const bundlePem = await readFile(join(cp.dataDir, 'bundle.pem'), 'utf8');
  const svid = await joinTokenSvid(cp, bundlePem, `spiffe://${TD}/ns/default/sa/web`);
  const c = controlPlaneClients(cp.grpc, bundlePem, svid);
  const serials: string[] = [];
  try {
    const csr = await createCsr(generateKeyPair(), {});
    for (let i = 0; i < RENEWALS; i++) {
      const r = await signSvid(c.identity, { csr });
      expect(r.err, String(i)).toBeNull();
      serials.push(r.res!.serial);
    }
  } finally {
    c.close();
  }
  const file = join(cp.dataDir, 'audit.log');
  expect((await readdir(cp.dataDir)).filter((f) => f.startsWith('audit.log')).sort()).toEqual(['audit.log', 'audit.log.1']);
  for (const f of [file, `${file}.1`]) {
    const st = await stat(f);
    expect(st.mode & 0o777, f).toBe(0o600);
    expect(st.size, f).toBeLessThanOrEqual(MAX);
    expect((await readFile(f, 'utf8')).endsWith('\n'), f).toBe(true);
  }
  // Older lines went with the .1 that was replaced; those kept are the newest issuances, none missing between files.
  const kept = [...(await lines(`${file}.1`)), ...(await lines(file))].filter((l) => l.event === 'svid.issued').map((l) => l.serial);
  expect(kept.length).toBeGreaterThan(MAX / 400);
  expect(kept.length).toBeLessThan(RENEWALS);
  expect(kept).toEqual(serials.slice(-kept.length));
});
