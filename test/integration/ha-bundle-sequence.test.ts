// Replicas on one PostgreSQL serve one spiffe_sequence for one key set (audit 54b F4): three real control-plane
// replicas, each with an https_spiffe bundle endpoint, fetched with curl as a peer behind one Service would reach
// them in turn. At start, and again after `ca prepare` changes the keys, every endpoint answers the same keys
// under the same sequence, and the change raised it (before, each replica drew its own number from the shared
// counter, so a peer saw 2 / 1 / 3 and refused two fetches in three as a rollback).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { freePort } from '../helpers/free-port.js';
import { type HaReplica, startHaReplica, writeHaReplicaConfig } from '../helpers/ha-mesh.js';
import { openPostgresDatabase, type PostgresDatabase } from '../helpers/postgres-database.js';
import { makeTempDir } from '../helpers/run.js';
import { until } from '../helpers/until.js';

const run = promisify(execFile);

let server: PostgresDatabase;
let cleanup: () => Promise<void>;
let replicas: { r: HaReplica; port: number }[] = [];

beforeAll(async () => {
  server = await openPostgresDatabase();
  let dir: string;
  ({ dir, cleanup } = await makeTempDir());
  // Started together, as a Deployment's pods are: each writes its bundle file at once. A free port can be taken by
  // another test between freePort() and the bind (EADDRINUSE, seen once in a CI run): a replica then tries another.
  const start = async (name: string): Promise<{ r: HaReplica; port: number }> => {
    for (let tries = 1; ; tries++) {
      const port = await freePort();
      const file = await writeHaReplicaConfig({ dir: join(dir, name), name, dbUrl: server.url, extra: `federation:\n  bundleEndpoint: { listen: 127.0.0.1:${port} }` });
      try {
        return { r: await startHaReplica(join(dir, name), name, file), port };
      } catch (e) {
        if (tries >= 3 || !String(e instanceof Error ? `${e.message}${e.stack}` : e).includes('EADDRINUSE')) throw e;
      }
    }
  };
  replicas = await Promise.all(['r1', 'r2', 'r3'].map(start));
}, 90_000);

afterAll(async () => {
  for (const { r } of replicas) await r.stop();
  await server?.destroy();
  await cleanup?.();
});

interface Served {
  readonly keys: string;
  readonly sequence: number;
}

/** What a peer gets from one replica's endpoint (curl; the endpoint's certificate is judged elsewhere). */
async function fetchBundle(port: number): Promise<Served> {
  const { stdout } = await run('curl', ['-sk', '--max-time', '10', `https://127.0.0.1:${port}/`]);
  const doc = JSON.parse(stdout) as { keys: unknown[]; spiffe_sequence: number };
  return { keys: JSON.stringify(doc.keys), sequence: doc.spiffe_sequence };
}

const servedByAll = () => Promise.all(replicas.map(({ port }) => fetchBundle(port)));

describe('spiffe_sequence on replicas sharing a database', () => {
  test('every replica serves the same keys under the same sequence, at start and after a key change', async () => {
    const first = await servedByAll();
    expect(new Set(first.map((s) => s.keys)).size).toBe(1);
    expect(first.map((s) => s.sequence)).toEqual(first.map(() => first[0]!.sequence));

    await adminRequest(replicas[1]!.r.dataDir, 'POST', '/v1/ca/prepare');
    // The others follow by the change notification; until then they still serve the old keys.
    await until('every replica serves the new keys', async () => new Set((await servedByAll()).map((s) => s.keys)).size === 1 && (await fetchBundle(replicas[0]!.port)).keys !== first[0]!.keys, 20_000, 100);
    const after = await servedByAll();
    expect(after.map((s) => s.sequence)).toEqual(after.map(() => after[0]!.sequence));
    expect(after[0]!.sequence).toBeGreaterThan(first[0]!.sequence);
  }, 60_000);
});
