// A SignSvid whose deadline passes while the control plane is held up commits nothing (audit 40a F3, through the
// injected deadline clock of identity-service.ts): a real `tessera control-plane` on a real PostgreSQL, a real grpc-js
// client with a join token and a 1.5 s deadline. The store is paused under the call (the revocations table locked by
// the test, so the ban read right before signing waits): the client gives up with DEADLINE_EXCEEDED, the lock goes,
// and the call continues with its caller gone. Asserted by behaviour: CALLER_GONE audited, no SVID recorded, the
// token unspent, and the retry with the same token is signed. (Before audit 40a F3 the token was spent for the call
// nobody waited for, and the retry got TESSERA_ERR_ATTESTATION_TOKEN_USED.)
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair } from '../../common/pki/keys.js';
import { controlPlaneClients, createJoinToken, errorCode, TD } from '../helpers/control-plane.js';
import { type HaReplica, startHaReplicas } from '../helpers/ha-mesh.js';
import { openPostgresDatabase, type PostgresDatabase } from '../helpers/postgres-database.js';
import { makeTempDir } from '../helpers/run.js';
import { until } from '../helpers/until.js';

const ID = `spiffe://${TD}/ns/deadline/sa/late`;
const DEADLINE_MS = 1_500;

let server: PostgresDatabase;
let dir: string;
let cleanup: () => Promise<void>;
let cp: HaReplica | undefined;
let db: pg.Client;

beforeAll(async () => {
  server = await openPostgresDatabase();
  ({ dir, cleanup } = await makeTempDir());
  [cp] = await startHaReplicas(dir, server.url, 1);
  db = new pg.Client({ connectionString: server.url, connectionTimeoutMillis: 5_000 });
  await db.connect();
}, 120_000);

afterAll(async () => {
  await db?.end();
  await cp?.stop();
  await server?.destroy();
  await cleanup?.();
});

type Answer = { err: grpc.ServiceError | null; res?: { spiffe_id: string; serial: string } };
const sign = (identity: grpc.Client & Record<string, unknown>, req: Record<string, unknown>, deadlineMs: number) =>
  new Promise<Answer>((resolve) => (identity['SignSvid'] as (...a: unknown[]) => void)(req, { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null, res: Answer['res']) => resolve({ err, res })));
const rows = async (sql: string, params: unknown[]) => (await db.query(sql, params)).rows;

describe('SignSvid past its deadline while the store is held up', () => {
  test('nothing is committed for the caller that gave up: its join token buys the SVID on the retry', async () => {
    const token = await createJoinToken(cp!.dataDir, ID, 600_000);
    const csr = await createCsr(generateKeyPair(), {});
    const c = controlPlaneClients(cp!.grpc, await readFile(join(cp!.dataDir, 'bundle.pem'), 'utf8'));
    const lock = new pg.Client({ connectionString: server.url, connectionTimeoutMillis: 5_000 });
    await lock.connect();
    try {
      await new Promise<void>((resolve, reject) => c.identity.waitForReady(Date.now() + 10_000, (e) => (e ? reject(e) : resolve())));
      // The store paused where it matters: the read of bans right before signing (Revocations.checkStored) waits
      // for this lock, and the commit comes after it.
      await lock.query('BEGIN');
      await lock.query('LOCK TABLE revocations IN ACCESS EXCLUSIVE MODE');
      const late = await sign(c.identity, { csr, join_token: token }, DEADLINE_MS);
      expect(late.err?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
      // The server's own deadline (grpc-timeout counts from the call's arrival, a moment after the client's) passes
      // too before the store answers again; the client's cancel has reached it already.
      await new Promise((resolve) => setTimeout(resolve, 300));
      await lock.query('ROLLBACK');

      // The call goes on and finds its caller gone: refused and audited, before anything was committed.
      await until('the late call is audited', async () => (await rows("SELECT 1 FROM audit WHERE spiffe_id = $1 AND event LIKE 'svid.%'", [ID])).length > 0, 10_000, 50);
      expect(await rows("SELECT event, code FROM audit WHERE spiffe_id = $1 AND event LIKE 'svid.%' ORDER BY seq", [ID])).toEqual([{ event: 'svid.refused', code: 'TESSERA_ERR_ISSUANCE_CALLER_GONE' }]);
      expect(await rows('SELECT serial FROM issuances WHERE spiffe_id = $1', [ID])).toEqual([]);
      expect(await rows('SELECT used_at_ms FROM join_tokens WHERE spiffe_id = $1', [ID])).toEqual([{ used_at_ms: null }]);

      // The proxy's retry with the same token is signed; the token is spent with that one SVID.
      const retry = await sign(c.identity, { csr, join_token: token }, 10_000);
      expect([retry.err?.code, errorCode(retry.err)]).toEqual([undefined, undefined]);
      expect(retry.res?.spiffe_id).toBe(ID);
      expect((await rows('SELECT serial FROM issuances WHERE spiffe_id = $1', [ID])).map((r) => r.serial)).toEqual([retry.res!.serial]);
      expect((await rows('SELECT used_at_ms FROM join_tokens WHERE spiffe_id = $1', [ID]))[0]?.used_at_ms).not.toBeNull();
    } finally {
      await lock.end();
      c.close();
    }
  });
});
