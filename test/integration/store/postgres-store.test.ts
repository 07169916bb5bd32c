// What only the PostgreSQL store does, against a real server (the contract itself is checked by
// store-contract-postgres.test.ts): the schema migration (recorded, applied once, once only even when several replicas
// open a fresh database together), LIKE wildcards in an audit prefix taken literally, a NUL in an audited value,
// a stored registration that no longer parses, the change feed's own notification coming back through LISTEN, and
// the replica's local audit.log cut at audit.logMaxBytes while every row still reaches the shared table.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { PG_MIGRATIONS } from '../../../control-plane/src/store/postgres/pg-migrations.js';
import { openPostgresDatabase, type PostgresDatabase } from '../../helpers/postgres-database.js';
import { openTestPgStore, type TestPgStore } from '../../helpers/postgres-store.js';
import { until } from '../../helpers/until.js';

let server: PostgresDatabase;
let a: TestPgStore;

beforeAll(async () => {
  server = await openPostgresDatabase();
  // No catch-up poll during these tests: 'fires nothing' must not be met by a poll tick.
  a = await openTestPgStore(server.url, { changePollMs: 60_000 });
}, 90_000);

afterAll(async () => {
  await a?.dispose();
  await server?.destroy();
});

async function sql(url: string, text: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await c.query(text, params);
  } finally {
    await c.end();
  }
}

describe('postgres store: schema', () => {
  test('tessera_schema records every migration; a second open applies nothing', async () => {
    const v = await sql(server.url, 'SELECT array_agg(version ORDER BY version) AS v FROM tessera_schema');
    expect(v.rows[0].v).toEqual(PG_MIGRATIONS.map((_, i) => i + 1));
    expect(a.log.lines.filter((l) => l.msg.includes('migrated')).length).toBe(1);
    const b = await openTestPgStore(server.url);
    try {
      expect(b.log.lines.filter((l) => l.msg.includes('migrated'))).toEqual([]);
    } finally {
      await b.dispose();
    }
  });

  test('a database with a newer schema than this Tessera knows is refused at start', async () => {
    // Named after this file's database: destroy() drops it too.
    await sql(server.adminUrl, `CREATE DATABASE ${server.database}_newer OWNER tessera`);
    const url = server.urlOf(`${server.database}_newer`);
    const first = await openTestPgStore(url);
    await first.dispose();
    await sql(url, 'INSERT INTO tessera_schema (version) VALUES ($1)', [PG_MIGRATIONS.length + 1]);
    const e = await openTestPgStore(url).catch((err) => err);
    expect(e.code).toBe('TESSERA_ERR_CP_START_FAILED');
    expect(e.message).toContain(`schema version ${PG_MIGRATIONS.length + 1} is newer`);
  });

  test('a database where the role may not create tables: refused at start with the migration named', async () => {
    await sql(server.adminUrl, `CREATE DATABASE ${server.database}_readonly`);
    const e = await openTestPgStore(server.urlOf(`${server.database}_readonly`)).catch((err) => err);
    expect(e.code).toBe('TESSERA_ERR_CP_START_FAILED');
    expect(e.message).toContain('the schema migration failed: permission denied');
    expect(e.message).not.toContain(decodeURIComponent(new URL(server.url).password));
  });

  test('four stores opening one fresh database at once: the schema is made once, all of them work', async () => {
    await sql(server.adminUrl, `CREATE DATABASE ${server.database}_fresh OWNER tessera`);
    const url = server.urlOf(`${server.database}_fresh`);
    const stores = await Promise.all([0, 1, 2, 3].map(() => openTestPgStore(url)));
    try {
      expect(stores.filter((s) => s.log.lines.some((l) => l.msg.includes('migrated'))).length).toBe(1);
      for (const [i, s] of stores.entries()) expect(await s.store.meta.increment('n')).toBe(i + 1);
    } finally {
      await Promise.all(stores.map((s) => s.dispose()));
    }
  });
});

describe('postgres store: data edge cases', () => {
  test('audit prefixes: % and _ are literal, not wildcards', async () => {
    a.store.audit.record(1, { event: 'svid.issued' });
    a.store.audit.record(2, { event: 'svid_x' });
    await a.store.audit.flush();
    expect((await a.store.audit.recent('svid')).map((e) => e.event)).toEqual(['svid_x', 'svid.issued']);
    expect((await a.store.audit.recent('svid_')).map((e) => e.event)).toEqual(['svid_x']);
    expect(await a.store.audit.recent('%')).toEqual([]);
  });

  test('a NUL in an audited value keeps the row (the JSON column holds it exactly)', async () => {
    a.store.audit.record(1, { event: 'nul.check', spiffeId: 'spiffe://example.org/a\u0000b' });
    await a.store.audit.flush();
    expect((await a.store.audit.recent('nul.check'))[0]?.spiffeId).toBe('spiffe://example.org/a\u0000b');
    expect(a.store.audit.stats()).toMatchObject({ failed: 0, dropped: 0 });
  });

  test('a stored registration that no longer parses is skipped, the others load', async () => {
    const id = 'spiffe://example.org/ns/default/sa/api';
    const endpoint = { host: '127.0.0.1', port: 8001, spiffeId: id, protocol: 'http' as const, ready: true, zone: '', weight: 100, source: 'self' as const };
    await a.store.registrations.save({ id: 'good', spiffeId: id, registrations: [{ service: 'api', endpoint }] }, 1, 'replica-a');
    await sql(server.url, "INSERT INTO registrations VALUES ('bad', $1, 'api', 'x', '{not json', 1)", [id]);
    expect((await a.store.registrations.loadAll()).map((s) => s.id)).toEqual(['good']);
  });
});

describe('postgres store: change feed', () => {
  test('the announcing store hears its own announcement back through LISTEN', async () => {
    await until('listening', () => a.store.changes.listening);
    let fired = 0;
    const off = a.store.changes.subscribe('jwt', () => fired++);
    try {
      await a.store.changes.announce('jwt');
      await until('jwt fired', () => fired > 0, 5_000, 10);
    } finally {
      off();
    }
  });

  test('a NOTIFY with an unknown payload fires nothing', async () => {
    await until('listening', () => a.store.changes.listening);
    let fired = 0;
    const offs = (['ca', 'grants', 'revocations', 'registrations', 'jwt'] as const).map((t) => a.store.changes.subscribe(t, () => fired++));
    try {
      await sql(server.url, "SELECT pg_notify('tessera_changes', 'ca; DROP TABLE audit')");
      await new Promise((r) => setTimeout(r, 300));
      expect(fired).toBe(0);
    } finally {
      for (const f of offs) f();
    }
  });
});

describe('postgres store: the local audit.log', () => {
  test('cut into audit.log.1 at auditLogMaxBytes (whole lines, 0600, none lost between the files); every row reaches the table', async () => {
    const max = 65_536;
    const b = await openTestPgStore(server.url, { auditLogMaxBytes: max });
    try {
      const pad = 'x'.repeat(250);
      for (let n = 0; n < 300; n++) b.store.audit.record(n, { event: 'size.check', n, pad });
      await b.store.audit.flush();
      const file = join(b.dataDir, 'audit.log');
      expect(readdirSync(b.dataDir).filter((f) => f.startsWith('audit.log')).sort()).toEqual(['audit.log', 'audit.log.1']);
      const numbers = (f: string) => readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).n as number);
      for (const f of [file, `${file}.1`]) {
        expect(statSync(f).mode & 0o777, f).toBe(0o600);
        expect(statSync(f).size, f).toBeLessThanOrEqual(max);
      }
      const kept = [...numbers(`${file}.1`), ...numbers(file)];
      expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => 300 - kept.length + i));
      expect((await b.store.audit.recent('size.check', 1_000)).length).toBe(300);
    } finally {
      await b.dispose();
    }
  });
});
