// The inventory's upkeep with a real control plane process (SQLite store, 6 s SVIDs, `inventory.keep: 1s`, so it
// prunes every second): SVIDs nobody renewed, and the control plane's own, leave the `issuances` table soon after
// their keep, so the table holds the live chain and little else; the chain a workload keeps renewing keeps its
// first SVIDs, expired long before, and `tessera revoke serial` of the first one still bans the live one renewed
// from it, which can renew no more.
import { DatabaseSync } from 'node:sqlite';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair, privateKeyPem } from '../../common/pki/keys.js';
import { encodePem } from '../../common/pki/pem.js';
import { type ClientSvid, type RunningControlPlane, TD, controlPlaneClients, createJoinToken, errorCode, signSvid, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { makeTempDir, tessera } from '../helpers/run.js';
import { until } from '../helpers/until.js';

const WEB = `spiffe://${TD}/ns/default/sa/web`;
const GONE = `spiffe://${TD}/ns/default/sa/gone`;
const KEEP_MS = 1_000;

let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane;
let bundlePem: string;

interface Svid extends ClientSvid {
  readonly serial: string;
  readonly notAfterMs: number;
}

/** SignSvid: with a join token for `id` (attestation), or over mTLS with `current` (renewal). */
async function sign(id: string, current?: Svid): Promise<{ svid?: Svid; code?: string }> {
  const c = controlPlaneClients(cp.grpc, bundlePem, current);
  try {
    const key = generateKeyPair();
    const r = await signSvid(c.identity, { csr: await createCsr(key, {}), ...(current ? {} : { join_token: await createJoinToken(cp.dataDir, id) }) });
    if (r.err) return { code: errorCode(r.err) ?? r.err.message };
    const res = r.res!;
    return { svid: { chainPem: res.svid_chain.map((d) => encodePem('CERTIFICATE', d)).join(''), keyPem: privateKeyPem(key), serial: res.serial, notAfterMs: Number(res.not_after_unix_ms) } };
  } finally {
    c.close();
  }
}

async function issued(id: string, current?: Svid): Promise<Svid> {
  const r = await sign(id, current);
  if (!r.svid) throw new Error(`SignSvid refused: ${r.code}`);
  return r.svid;
}

/** The inventory's rows, read from the SQLite file without taking part in the control plane's writes. */
function rows(): { serial: string; notAfterMs: number }[] {
  const db = new DatabaseSync(join(cp.dataDir, 'tessera.db'), { readOnly: true });
  try {
    return db.prepare('SELECT serial, not_after_ms AS notAfterMs FROM issuances').all() as { serial: string; notAfterMs: number }[];
  } finally {
    db.close();
  }
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const cfg = await writeControlPlaneConfig(dir, `svid: { ttl: 6s, backdate: 1s, rateLimit: { burst: 1000, perMinute: 60000 } }\ninventory: { keep: 1s }`);
  cp = await startControlPlaneProcess(dir, cfg);
  bundlePem = await readFile(join(cp.dataDir, 'bundle.pem'), 'utf8');
}, 30_000);

afterAll(async () => {
  await cp?.stop();
  await cleanup?.();
});

test('dead SVIDs leave the table; a live chain keeps its long-expired first SVID, whose ban still reaches the live one', async () => {
  const chain = [await issued(WEB)];
  const gone = await Promise.all(Array.from({ length: 5 }, () => issued(GONE)));
  const goneSerials = new Set(gone.map((s) => s.serial));
  // Renewed about every second (bounded), until the first SVID expired well past the keep and the dead ones went.
  const settled = () => {
    const now = Date.now();
    const held = rows();
    return chain[0]!.notAfterMs < now - 4 * KEEP_MS && !held.some((r) => goneSerials.has(r.serial));
  };
  for (let i = 0; i < 40 && !settled(); i++) {
    await new Promise((r) => setTimeout(r, 1_000));
    chain.push(await issued(WEB, chain.at(-1)));
  }
  expect(settled()).toBe(true);
  const held = new Set(rows().map((r) => r.serial));
  expect(chain.filter((s) => !held.has(s.serial)).map((s) => s.serial)).toEqual([]);
  // Bounded: besides the chain, only rows within a few prunes of their keep (the control plane's own SVIDs).
  const chainSerials = new Set(chain.map((s) => s.serial));
  await until('every row outside the chain is at most a few seconds past its keep', () => rows().every((r) => chainSerials.has(r.serial) || r.notAfterMs > Date.now() - 4 * KEEP_MS), 20_000);

  // The ban of the first serial, expired seconds ago past its keep, finds it and walks to the live tip.
  const tip = chain.at(-1)!;
  const r = await tessera(['revoke', 'serial', '--data-dir', cp.dataDir, '--serial', chain[0]!.serial, '--reason', 'leaked', '--json']);
  expect(r.code, r.stderr).toBe(0);
  expect((JSON.parse(r.stdout) as { renewals: string[] }).renewals).toContain(tip.serial);
  expect((await sign(WEB, tip)).code).toBe('TESSERA_ERR_REVOCATION_SERIAL_BANNED');
}, 90_000);
