// Two control-plane replicas on one real PostgreSQL (audit F4): a ban whose answer has returned on r1 holds on r2
// at once, before r2 hears of it by NOTIFY. A banned SVID that asks r2 to renew the moment `revoke serial` returned
// is refused (it must not renew into a new serial the ban does not name), and a join token for an ID banned a moment
// ago on r1 buys nothing on r2. Each round races the announcement; before the fix about half of them were issued.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair, privateKeyPem } from '../../common/pki/keys.js';
import { encodePem } from '../../common/pki/pem.js';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { controlPlaneClients, createJoinToken, errorCode, signSvid, TD } from '../helpers/control-plane.js';
import { type HaReplica, startHaReplicas } from '../helpers/ha-mesh.js';
import { openPostgresDatabase, type PostgresDatabase } from '../helpers/postgres-database.js';
import { makeTempDir } from '../helpers/run.js';

const ROUNDS = 8;
/** The ID window is narrower than the serial one (no renewal to prepare): more rounds, each a few ms. */
const ID_ROUNDS = 20;

let server: PostgresDatabase;
let dir: string;
let cleanup: () => Promise<void>;
let replicas: HaReplica[] = [];

beforeAll(async () => {
  server = await openPostgresDatabase();
  ({ dir, cleanup } = await makeTempDir());
  replicas = await startHaReplicas(dir, server.url, 2);
}, 120_000);

afterAll(async () => {
  for (const r of replicas) await r.stop();
  await server?.destroy();
  await cleanup?.();
});

/** Resolves when the channel is connected, so the renewal right after the ban is not delayed by a handshake. */
function connected(client: grpc.Client): Promise<void> {
  return new Promise((resolve, reject) => client.waitForReady(Date.now() + 10_000, (e) => (e ? reject(e) : resolve())));
}

const outcome = (a: Awaited<ReturnType<typeof signSvid>>) => (a.err ? (errorCode(a.err) ?? `status ${a.err.code}`) : 'ISSUED');

test(`a serial banned on r1 cannot renew on r2 right after the ban returned (${ROUNDS} rounds)`, async () => {
  const [r1, r2] = replicas as [HaReplica, HaReplica];
  const bundle = await readFile(join(r2.dataDir, 'bundle.pem'), 'utf8');
  const attest = controlPlaneClients(r2.grpc, bundle);
  const seen: string[] = [];
  try {
    for (let i = 0; i < ROUNDS; i++) {
      const id = `spiffe://${TD}/ns/race/sa/serial-${i}`;
      const key = generateKeyPair();
      const first = await signSvid(attest.identity, { csr: await createCsr(key, {}), join_token: await createJoinToken(r1.dataDir, id, 60_000) });
      expect(first.err).toBeNull();
      const chainPem = first.res!.svid_chain.map((d) => encodePem('CERTIFICATE', d)).join('');
      const asSvid = controlPlaneClients(r2.grpc, bundle, { keyPem: privateKeyPem(key), chainPem });
      try {
        await connected(asSvid.identity);
        await adminRequest(r1.dataDir, 'POST', '/v1/revocations', { kind: 'serial', value: first.res!.serial, reason: 'race' });
        seen.push(outcome(await signSvid(asSvid.identity, { csr: await createCsr(key, {}) })));
      } finally {
        asSvid.close();
      }
    }
  } finally {
    attest.close();
  }
  expect(seen).toEqual(Array(ROUNDS).fill('TESSERA_ERR_REVOCATION_SERIAL_BANNED'));
});

test(`a join token of an ID banned on r1 is refused on r2 right after the ban returned (${ID_ROUNDS} rounds)`, async () => {
  const [r1, r2] = replicas as [HaReplica, HaReplica];
  const c2 = controlPlaneClients(r2.grpc, await readFile(join(r2.dataDir, 'bundle.pem'), 'utf8'));
  const seen: string[] = [];
  try {
    await connected(c2.identity);
    for (let i = 0; i < ID_ROUNDS; i++) {
      const id = `spiffe://${TD}/ns/race/sa/id-${i}`;
      const token = await createJoinToken(r1.dataDir, id, 60_000);
      await adminRequest(r1.dataDir, 'POST', '/v1/revocations', { kind: 'spiffe_id', value: id, reason: 'race' });
      seen.push(outcome(await signSvid(c2.identity, { csr: await createCsr(generateKeyPair(), {}), join_token: token })));
    }
  } finally {
    c2.close();
  }
  expect(seen).toEqual(Array(ID_ROUNDS).fill('TESSERA_ERR_REVOCATION_ID_BANNED'));
});
