// vitest globalSetup: one PostgreSQL server for the whole test run, started lazily. Starting a cluster (initdb,
// pg_ctl start, role) costs seconds per test file; a file that only needs a database asks this broker (HTTP on a
// unix socket in a private dir, served by vitest's main process) for the server, then makes a fresh database of its
// own (postgres-database.ts). Nothing starts until a file asks, so runs without such a file need no PostgreSQL.
// Files that stop, kill or reconfigure the server itself still start a private one (startPostgres).
import { createServer } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { type PostgresServer, startPostgres } from './postgres-server.js';

/** What the broker hands out: the shared server as the superuser and as the Tessera role. */
export interface SharedPostgresInfo {
  readonly adminUrl: string;
  readonly url: string;
  readonly port: number;
  readonly logFile: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** The broker's unix socket (test/helpers/postgres-global-setup.ts). */
    tesseraPostgresBroker: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-pg-broker-'));
  const socket = join(dir, 'broker.sock');
  let starting: Promise<PostgresServer> | undefined;
  const server = () => {
    // One start for every file that asks; a failed start is not kept, so a later file tries again.
    starting ??= startPostgres().catch((e: unknown) => {
      starting = undefined;
      throw e;
    });
    return starting;
  };
  const broker = createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/server') {
      res.writeHead(404).end();
      return;
    }
    server().then(
      (s) => {
        const info: SharedPostgresInfo = { adminUrl: s.adminUrl, url: s.url, port: s.port, logFile: s.logFile };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(info));
      },
      (e: unknown) => res.writeHead(500).end(String((e as Error).message ?? e)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    broker.once('error', reject);
    broker.listen(socket, resolve);
  });
  project.provide('tesseraPostgresBroker', socket);
  return async () => {
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    const s = await starting?.catch(() => undefined);
    await s?.destroy();
    await rm(dir, { recursive: true, force: true });
  };
}
