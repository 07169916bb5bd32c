// The inventory's upkeep with a real control plane process (SQLite store, 30 s SVIDs, `inventory.keep: 1s`, so it
// prunes every second): every SVID leaves the `issuances` table soon after its keep, those of a live chain too, so
// the table holds the live SVIDs and little else. A workload renews its SVID for 3 s, five times over, then for
// the full 30 s: the short ones go while the first is still live, and `tessera revoke serial` of the first still bans
// the live one renewed from them, which can renew no more; one of the short ones, gone, is an unknown serial.
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
/** The lifetime the chain's middle SVIDs ask for (SignSvid ttl_seconds). */
const SHORT_S = 3;

let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane;
let bundlePem: string;

interface Svid extends ClientSvid {
  readonly serial: string;
  readonly notAfterMs: number;
}

/** SignSvid: with a join token for `id` (attestation), or over mTLS with `current` (renewal); `ttlS` asks for less. */
async function sign(id: string, current?: Svid, ttlS?: number): Promise<{ svid?: Svid; code?: string }> {
  const c = controlPlaneClients(cp.grpc, bundlePem, current);
  try {
    const key = generateKeyPair();
    const r = await signSvid(c.identity, { csr: await createCsr(key, {}), ...(current ? {} : { join_token: await createJoinToken(cp.dataDir, id) }), ...(ttlS ? { ttl_seconds: ttlS } : {}) });
    if (r.err) return { code: errorCode(r.err) ?? r.err.message };
    const res = r.res!;
    return { svid: { chainPem: res.svid_chain.map((d) => encodePem('CERTIFICATE', d)).join(''), keyPem: privateKeyPem(key), serial: res.serial, notAfterMs: Number(res.not_after_unix_ms) } };
  } finally {
    c.close();
  }
}

async function issued(id: string, current?: Svid, ttlS?: number): Promise<Svid> {
  const r = await sign(id, current, ttlS);
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
  const cfg = await writeControlPlaneConfig(dir, `svid: { ttl: 30s, backdate: 1s, rateLimit: { burst: 1000, perMinute: 60000 } }\ninventory: { keep: 1s }`);
  cp = await startControlPlaneProcess(dir, cfg);
  bundlePem = await readFile(join(cp.dataDir, 'bundle.pem'), 'utf8');
}, 30_000);

afterAll(async () => {
  await cp?.stop();
  await cleanup?.();
});

test('expired SVIDs leave the table, the middle ones of a live chain too; the ban of its first serial still reaches its live tip, a gone serial is unknown', async () => {
  const first = await issued(WEB);
  const gone = await Promise.all(Array.from({ length: 5 }, () => issued(GONE, undefined, SHORT_S)));
  const middle: Svid[] = [];
  for (let i = 0; i < 5; i++) {
    middle.push(await issued(WEB, middle.at(-1) ?? first, SHORT_S));
    await new Promise((r) => setTimeout(r, 500));
  }
  const tip = await issued(WEB, middle.at(-1));
  expect(middle.every((s) => s.notAfterMs < first.notAfterMs)).toBe(true);
  const shortLived = new Set([...gone, ...middle].map((s) => s.serial));
  await until('the short-lived SVIDs left the table', () => !rows().some((r) => shortLived.has(r.serial)), 20_000);
  // Bounded: only rows within a few prunes of their keep (and the live ones).
  await until('every row is at most a few seconds past its keep', () => rows().every((r) => r.notAfterMs > Date.now() - 4 * KEEP_MS), 20_000);
  const held = new Set(rows().map((r) => r.serial));
  expect(held.has(first.serial) && held.has(tip.serial)).toBe(true);
  expect(Date.now()).toBeLessThan(first.notAfterMs);

  // The ban of the first serial, every row between it and the tip gone, reaches the tip by its renewal tree.
  const r = await tessera(['revoke', 'serial', '--data-dir', cp.dataDir, '--serial', first.serial, '--reason', 'leaked', '--json']);
  expect(r.code, r.stderr).toBe(0);
  expect((JSON.parse(r.stdout) as { renewals: string[] }).renewals).toEqual([tip.serial]);
  expect((await sign(WEB, tip)).code).toBe('TESSERA_ERR_REVOCATION_SERIAL_BANNED');
  // A serial whose row went is not known any more: nothing is banned.
  const unknown = await tessera(['revoke', 'serial', '--data-dir', cp.dataDir, '--serial', middle[0]!.serial, '--reason', 'leaked']);
  expect(unknown.code).toBe(1);
  expect(unknown.stderr).toContain('TESSERA_ERR_REVOCATION_UNKNOWN_SERIAL');
}, 90_000);
