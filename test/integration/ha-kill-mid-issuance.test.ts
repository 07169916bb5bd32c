// Audit 38c F2: a replica SIGKILLed while many attestations are in flight strands no join token. Two real
// control-plane replicas on one real PostgreSQL; 60 SignSvid calls, each with its own join token, are sent at once
// to r1, which is killed as soon as the database shows the first tokens spent. Afterwards every token is either
// spent with exactly one SVID in the shared inventory, or unspent; every unspent one is redeemed on r2 exactly once
// (two simultaneous attempts per token: one SVID, one TESSERA_ERR_ATTESTATION_TOKEN_USED) and every spent one is
// refused there. The callers of r1 that got no answer see UNAVAILABLE, which a proxy retries. (The old code spent
// each token in its own statement before signing and recording: most of the 60 were left spent with no SVID.)
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair } from '../../common/pki/keys.js';
import { hashToken } from '../../control-plane/src/store/join-token.js';
import { controlPlaneClients, createJoinToken, errorCode, type SignAnswer, signSvid, TD } from '../helpers/control-plane.js';
import { type HaReplica, startHaReplicas } from '../helpers/ha-mesh.js';
import { openPostgresDatabase, type PostgresDatabase } from '../helpers/postgres-database.js';
import { makeTempDir } from '../helpers/run.js';

const N = 60;
/** r1 is killed once this many tokens are spent: mid-burst, with two thirds of the calls still in flight. */
const KILL_AT_SPENT = 20;
const ID_PREFIX = `spiffe://${TD}/ns/kill/sa/w`;

let server: PostgresDatabase;
let dir: string;
let cleanup: () => Promise<void>;
let replicas: HaReplica[] = [];
let db: pg.Client;

beforeAll(async () => {
  server = await openPostgresDatabase();
  ({ dir, cleanup } = await makeTempDir());
  replicas = await startHaReplicas(dir, server.url, 2);
  db = new pg.Client({ connectionString: server.url, connectionTimeoutMillis: 5_000 });
  await db.connect();
}, 120_000);

afterAll(async () => {
  await db?.end();
  for (const r of replicas) if (r.proc.exitCode === null && r.proc.signalCode === null) await r.stop();
  await server?.destroy();
  await cleanup?.();
});

async function spentCount(): Promise<number> {
  return Number((await db.query<{ n: string }>('SELECT count(used_at_ms) AS n FROM join_tokens WHERE spiffe_id LIKE $1', [`${ID_PREFIX}%`])).rows[0]!.n);
}

/** Resolves when `r`'s process has exited and the database has no session of it left (so nothing of it can still commit). */
async function goneWithItsSessions(r: HaReplica): Promise<void> {
  if (r.proc.exitCode === null && r.proc.signalCode === null) await new Promise((resolve) => r.proc.once('exit', resolve));
  const sql = "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()";
  for (let i = 0; i < 500; i++) {
    if (Number((await db.query<{ n: string }>(sql, [`tessera-control-plane ${r.name}`])).rows[0]!.n) === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`${r.name}'s database sessions outlived it by 10 s`);
}

const connected = (client: grpc.Client) => new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 10_000, (e) => (e ? reject(e) : resolve())));
const outcome = (a: SignAnswer) => (a.err === null ? 'ok' : (errorCode(a.err) ?? `grpc ${a.err.code}`));

describe('HA: a replica killed mid-issuance', () => {
  test('60 attestations in flight on r1, SIGKILL: no token spent without its SVID; each unspent token works once on r2', async () => {
    const [r1, r2] = replicas as [HaReplica, HaReplica];
    const ids = Array.from({ length: N }, (_, i) => `${ID_PREFIX}${i}`);
    // Minted on r2: the token rows are in the shared database, whichever replica redeems them.
    const tokens: string[] = [];
    for (const id of ids) tokens.push(await createJoinToken(r2.dataDir, id, 600_000));
    const csrs = await Promise.all(ids.map(() => createCsr(generateKeyPair(), {})));
    const c1 = controlPlaneClients(r1.grpc, await readFile(join(r1.dataDir, 'bundle.pem'), 'utf8'));
    const c2 = controlPlaneClients(r2.grpc, await readFile(join(r2.dataDir, 'bundle.pem'), 'utf8'));
    try {
      await Promise.all([connected(c1.identity), connected(c2.identity)]);

      // The burst, and the kill as soon as the database shows the first spends (bounded: by the calls' 10 s deadline,
      // and by a count of polls).
      let settled = false;
      const burst = Promise.all(tokens.map((join_token, i) => signSvid(c1.identity, { csr: csrs[i], join_token }))).finally(() => (settled = true));
      let spentAtKill = -1;
      for (let polls = 0; !settled && polls < 50_000; polls++) {
        const spent = await spentCount();
        if (spent >= KILL_AT_SPENT) {
          r1.proc.kill('SIGKILL');
          spentAtKill = spent;
          break;
        }
      }
      const onR1 = (await burst).map(outcome);
      await goneWithItsSessions(r1);
      const okOnR1 = onR1.filter((o) => o === 'ok').length;
      // The kill must have landed mid-burst, or this run proves nothing.
      expect(spentAtKill, `r1 answered all ${N} before the kill`).toBeGreaterThanOrEqual(KILL_AT_SPENT);
      expect(okOnR1, 'r1 answered every call before it died').toBeLessThan(N);
      // A caller whose answer was lost sees UNAVAILABLE (the connection dropped), which proxies retry.
      expect(new Set(onR1.filter((o) => o !== 'ok'))).toEqual(new Set([`grpc ${grpc.status.UNAVAILABLE}`]));

      // What the database holds now: each token spent or not, and the SVIDs recorded for its ID.
      const tokenRows = (await db.query<{ hash: string; used: string | null }>('SELECT hash, used_at_ms AS used FROM join_tokens WHERE spiffe_id LIKE $1', [`${ID_PREFIX}%`])).rows;
      const used = new Map(tokenRows.map((r) => [r.hash, r.used !== null]));
      const svidRows = (await db.query<{ spiffe_id: string; serial: string }>('SELECT spiffe_id, serial FROM issuances WHERE spiffe_id LIKE $1', [`${ID_PREFIX}%`])).rows;
      const svidsOf = (id: string) => svidRows.filter((r) => r.spiffe_id === id).map((r) => r.serial);
      const stranded = ids.filter((id, i) => used.get(hashToken(tokens[i]!)) === true && svidsOf(id).length === 0);
      const spentNow = [...used.values()].filter(Boolean).length;
      console.info(`ha-kill-mid-issuance: killed at ${spentAtKill} spent; r1 answered ok ${okOnR1}/${N}; after the kill: tokens spent ${spentNow}, SVIDs recorded ${svidRows.length}, spent with no SVID ${stranded.length}`);
      expect(stranded, `${stranded.length} of ${N} tokens were left spent with no SVID recorded`).toEqual([]);
      for (const [i, id] of ids.entries()) {
        expect(svidsOf(id).length, id).toBe(used.get(hashToken(tokens[i]!)) ? 1 : 0);
        // An answer r1 gave is an SVID the inventory holds.
        if (onR1[i] === 'ok') expect(used.get(hashToken(tokens[i]!)), id).toBe(true);
      }

      // Every token on r2, twice at once: an unspent one buys exactly one SVID, a spent one none.
      const retries = await Promise.all(
        tokens.map(async (join_token, i) => {
          const [a, b] = await Promise.all([signSvid(c2.identity, { csr: csrs[i], join_token }), signSvid(c2.identity, { csr: await createCsr(generateKeyPair(), {}), join_token })]);
          return [outcome(a), outcome(b)].sort().join(' ');
        }),
      );
      for (const [i, id] of ids.entries()) {
        const expected = used.get(hashToken(tokens[i]!)) ? 'TESSERA_ERR_ATTESTATION_TOKEN_USED TESSERA_ERR_ATTESTATION_TOKEN_USED' : 'TESSERA_ERR_ATTESTATION_TOKEN_USED ok';
        expect(retries[i], id).toBe(expected);
      }
      // And now every token is spent, each with exactly one SVID.
      const after = (await db.query<{ spiffe_id: string; n: string }>('SELECT spiffe_id, count(*) AS n FROM issuances WHERE spiffe_id LIKE $1 GROUP BY spiffe_id', [`${ID_PREFIX}%`])).rows;
      expect(after.length).toBe(N);
      expect(after.every((r) => Number(r.n) === 1)).toBe(true);
      expect(await spentCount()).toBe(N);
    } finally {
      c1.close();
      c2.close();
    }
  }, 90_000);
});
