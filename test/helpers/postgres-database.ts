// A fresh PostgreSQL database of a test file's own, on the run's shared server (postgres-global-setup.ts starts it
// on the first request): CREATE DATABASE owned by the Tessera role, dropped (with every session still on it) by
// destroy(). Databases isolate what the store keeps (tables, advisory locks, LISTEN channels); a test that looks at
// server-wide views (pg_stat_activity, pg_locks) filters by `database`. Without the broker (another vitest config)
// it falls back to a private server.
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import pg from 'pg';
import { inject } from 'vitest';
import type { SharedPostgresInfo } from './postgres-global-setup.js';
import { startPostgres } from './postgres-server.js';

export interface PostgresDatabase {
  /** postgres://tessera:<password>@127.0.0.1:<port>/<database> */
  readonly url: string;
  /** The same server as the superuser `postgres` (database `postgres`), for test-side inspection. */
  readonly adminUrl: string;
  /** This file's database name. */
  readonly database: string;
  readonly port: number;
  readonly logFile: string;
  /** `url` with another database of the same server. */
  urlOf(database: string): string;
  /** Drops this database and every database named `<database>_…` the test made (sessions on them are ended). */
  destroy(): Promise<void>;
}

let counter = 0;

function askBroker(socket: string): Promise<SharedPostgresInfo> {
  return new Promise((resolve, reject) => {
    // Bounded: the first request waits for initdb and the server start.
    const req = request({ socketPath: socket, method: 'POST', path: '/server', timeout: 90_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body) as SharedPostgresInfo) : reject(new Error(`shared PostgreSQL: ${body}`))));
    });
    req.on('timeout', () => req.destroy(new Error('shared PostgreSQL: no answer from the broker')));
    req.on('error', reject);
    req.end();
  });
}

async function adminSql(adminUrl: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 });
  await c.connect();
  try {
    return await c.query(sql, params);
  } finally {
    await c.end();
  }
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export async function openPostgresDatabase(): Promise<PostgresDatabase> {
  const socket = inject('tesseraPostgresBroker');
  if (!socket) {
    const s = await startPostgres();
    return { url: s.url, adminUrl: s.adminUrl, database: 'tessera', port: s.port, logFile: s.logFile, urlOf: (d) => withDatabase(s.url, d), destroy: () => s.destroy() };
  }
  const info = await askBroker(socket);
  // Unique among the files running now (pid), the databases this file makes (counter) and any a crashed file left.
  const database = `tessera_${process.pid}_${++counter}_${randomBytes(3).toString('hex')}`;
  await adminSql(info.adminUrl, `CREATE DATABASE ${database} OWNER tessera`);
  return {
    url: withDatabase(info.url, database),
    adminUrl: info.adminUrl,
    database,
    port: info.port,
    logFile: info.logFile,
    urlOf: (d) => withDatabase(info.url, d),
    async destroy() {
      const rows = (await adminSql(info.adminUrl, "SELECT datname FROM pg_database WHERE datname = $1 OR starts_with(datname, $1 || '_')", [database])).rows as { datname: string }[];
      for (const { datname } of rows) await adminSql(info.adminUrl, `DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
    },
  };
}
