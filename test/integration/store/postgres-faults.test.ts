// The PostgreSQL store when the database is not there or goes away, against a real server: refused at start with
// TESSERA_ERR_STORE_UNAVAILABLE (unreachable, wrong password, no such database), never showing the password; bad
// URLs refused as configuration errors; a server stopped or killed while the store runs makes calls fail with the
// code and they work again after a restart, audit rows recorded meanwhile arrive, the change feed catches up, and a
// leader steps down; a statement stuck behind a lock is cut by the statement timeout.
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../common/errors.js';
import { pgConnectionConfig } from '../../../control-plane/src/store/postgres/pg-connection-config.js';
import { DEFAULT_POOL_SETTINGS, PgDatabase } from '../../../control-plane/src/store/postgres/pg-database.js';
import type { IssuedSvidRow } from '../../../control-plane/src/store/store-contract.js';
import { freePort } from '../../helpers/free-port.js';
import { type PostgresServer, startPostgres } from '../../helpers/postgres-server.js';
import { openTestPgStore } from '../../helpers/postgres-store.js';
import { makeTempDir } from '../../helpers/run.js';
import { until } from '../../helpers/until.js';

let server: PostgresServer;
let password: string;

/** The SVID a token is spent for (a token is spent only with one: InventoryStore.recordWithToken). */
const svid = (serial: string): IssuedSvidRow => ({ serial, spiffeId: 'spiffe://example.org/lost', authorityId: 'A', intermediateSerial: 'i1', notBeforeMs: 0, notAfterMs: 1, issuedAtMs: 0, attestedAs: 'join_token:x', kind: 'attest', caller: 'test' });

beforeAll(async () => {
  server = await startPostgres();
  password = decodeURIComponent(new URL(server.url).password);
}, 90_000);

afterAll(async () => {
  await server?.destroy();
});

async function openError(url: string): Promise<{ code: string; message: string; details: Record<string, unknown> }> {
  const e = await openTestPgStore(url, { pool: { connectTimeoutMs: 3_000 } }).then(
    async (s) => {
      await s.dispose();
      throw new Error('the store opened');
    },
    (err) => err,
  );
  if (!isTesseraError(e)) throw e;
  return { code: e.code, message: e.message, details: { ...e.details } };
}

describe('postgres store: refused at start', () => {
  test('nothing listening on the port', async () => {
    const port = await freePort();
    const e = await openError(`postgres://tessera:${encodeURIComponent(password)}@127.0.0.1:${port}/tessera`);
    expect(e.code).toBe('TESSERA_ERR_STORE_UNAVAILABLE');
    expect(e.message).toContain(`127.0.0.1:${port}`);
    expect(e.message).toContain('ECONNREFUSED');
    expect(e.message).not.toContain(password);
    expect(JSON.stringify(e.details)).not.toContain(password);
  });

  test('a wrong password (the wrong one is not shown either)', async () => {
    const e = await openError(`postgres://tessera:not-the-${encodeURIComponent(password)}@127.0.0.1:${server.port}/tessera`);
    expect(e).toMatchObject({ code: 'TESSERA_ERR_STORE_UNAVAILABLE', details: { sqlstate: '28P01' } });
    expect(e.message).toContain('password authentication failed');
    expect(e.message).not.toContain('not-the-');
    expect(e.message).toContain('***');
  });

  test('a database that does not exist', async () => {
    const e = await openError(`postgres://tessera:${encodeURIComponent(password)}@127.0.0.1:${server.port}/no_such_db`);
    expect(e).toMatchObject({ code: 'TESSERA_ERR_STORE_UNAVAILABLE', details: { sqlstate: '3D000' } });
  });

  test('malformed URLs are configuration errors, naming the URL without its password', async () => {
    for (const [url, why] of [
      ['not a url', 'not a URL'],
      ['mysql://u:secretpw@127.0.0.1/db', 'scheme'],
      ['postgres://u:secretpw@127.0.0.1/db?sslmode=prefer', 'sslmode=prefer'],
      ['postgres://u:secretpw@127.0.0.1/db?connect_timeout=1', 'unknown parameter'],
      ['postgres://u:secretpw@127.0.0.1:99999/db', ''],
      ['postgres://u:secretpw@127.0.0.1/db?sslmode=require&sslcert=/x', 'sslcert and sslkey'],
    ] as const) {
      const e = await openError(url);
      expect(e.code, url).toBe('TESSERA_ERR_CONFIG_INVALID');
      expect(e.message, url).toContain(why);
      expect(e.message, url).not.toContain('secretpw');
    }
  });

  test('urlFile: read once and trimmed; a missing or empty file is named', async () => {
    const tmp = await makeTempDir();
    try {
      const file = join(tmp.dir, 'db-url');
      await writeFile(file, `\n  ${server.url}  \n\n`, { mode: 0o600 });
      const { openPostgresStore } = await import('../../../control-plane/src/store/postgres/open-postgres-store.js');
      const { realTimers } = await import('../../../shared-io/timers.js');
      const { systemClock } = await import('../../../common/clock.js');
      const log = { info: () => undefined, warn: () => undefined, error: () => undefined };
      const deps = { clock: systemClock, timers: realTimers, log, dataDir: tmp.dir, replica: 'url-file' };
      const store = await openPostgresStore({ urlFile: file }, deps);
      expect(await store.meta.increment('url-file')).toBe(1);
      expect(store.databaseName).not.toContain(password);
      await store.close();
      const missing = await openPostgresStore({ urlFile: join(tmp.dir, 'nope') }, deps).catch((e) => e);
      expect(isTesseraError(missing, 'TESSERA_ERR_CONFIG_UNREADABLE')).toBe(true);
      expect(missing.message).toContain('nope');
      await writeFile(file, ' \n');
      expect(isTesseraError(await openPostgresStore({ urlFile: file }, deps).catch((e) => e), 'TESSERA_ERR_FILE_EMPTY')).toBe(true);
    } finally {
      await tmp.cleanup();
    }
  });
});

describe('postgres store: the database lost while running', () => {
  test('stopped: calls fail with TESSERA_ERR_STORE_UNAVAILABLE; after the restart they work, queued audit rows arrive, the feed catches up', async () => {
    const s = await openTestPgStore(server.url, { changePollMs: 60_000 });
    try {
      await until('listening', () => s.store.changes.listening);
      const tok = await s.store.tokens.create('lost-1', 'spiffe://example.org/lost', Date.now(), 600_000);
      await server.stop();
      for (const call of [s.store.tokens.find(tok.hash), s.store.inventory.recordWithToken(svid('lost-1'), tok.hash, Date.now()), s.store.meta.increment('lost'), s.store.changes.announce('ca')]) {
        const e = await call.then(
          () => null,
          (err) => err,
        );
        expect(isTesseraError(e, 'TESSERA_ERR_STORE_UNAVAILABLE'), String(e)).toBe(true);
        expect(e.message).not.toContain(password);
      }
      s.store.audit.record(Date.now(), { event: 'while.down', caller: 'test' });
      await until('the feed noticed', () => !s.store.changes.listening, 5_000, 20);
      const seen = new Set<string>();
      const off = (['ca', 'grants', 'revocations', 'registrations', 'jwt'] as const).map((t) => s.store.changes.subscribe(t, () => seen.add(t)));
      seen.clear();
      await server.restart();
      await until('calls work again', async () => (await s.store.tokens.find(tok.hash).catch(() => undefined)) !== undefined, 15_000, 100);
      expect(await s.store.inventory.recordWithToken(svid('lost-1'), tok.hash, Date.now())).toBe(true);
      await s.store.audit.flush();
      expect((await s.store.audit.recent('while.down')).length).toBe(1);
      await until('the feed reconnected and fired every topic', () => s.store.changes.listening && seen.size === 5, 15_000, 50);
      for (const f of off) f();
      expect(s.store.audit.stats()).toMatchObject({ queued: 0, failed: 0, dropped: 0 });
      const logged = JSON.stringify(s.log.lines);
      expect(logged).toContain('audit rows cannot reach PostgreSQL');
      expect(logged).not.toContain(password);
    } finally {
      await server.restart();
      await s.dispose();
    }
  });

  test('killed (SIGKILL to every server process): calls fail with the code, the leader steps down at once, all comes back after the restart', async () => {
    const s = await openTestPgStore(server.url, { leaderRetryMs: 100, changePollMs: 60_000 });
    try {
      s.store.leader.start();
      await until('leader', () => s.store.leader.isLeader());
      const term = s.store.leader.term!;
      await server.kill();
      await until('leadership dropped with the connection', () => !s.store.leader.isLeader(), 5_000, 10);
      const e = await s.store.inventory.all().catch((err) => err);
      expect(isTesseraError(e, 'TESSERA_ERR_STORE_UNAVAILABLE')).toBe(true);
      await server.restart();
      await until('calls work again', async () => (await s.store.meta.increment('after-kill').catch(() => 0)) > 0, 30_000, 100);
      await until('leader again', () => s.store.leader.isLeader(), 15_000, 50);
      expect(s.store.leader.term).toBeGreaterThan(term);
    } finally {
      await server.restart();
      await s.dispose();
    }
  });

  test('audit while the database is down: a full queue drops new rows (counted), the local file keeps every line', async () => {
    const s = await openTestPgStore(server.url, { auditMaxQueued: 5, changePollMs: 60_000 });
    try {
      await server.stop();
      for (let i = 0; i < 8; i++) s.store.audit.record(Date.now(), { event: 'full.queue', n: i });
      expect(s.store.audit.stats()).toMatchObject({ queued: 5, dropped: 3 });
      const local = readFileSync(join(s.dataDir, 'audit.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).n);
      expect(local).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      await server.restart();
      await s.store.audit.flush();
      expect((await s.store.audit.recent('full.queue')).map((e) => e.n)).toEqual([4, 3, 2, 1, 0]);
      expect(s.store.audit.stats()).toMatchObject({ queued: 0, written: 5, failed: 0, dropped: 3 });
    } finally {
      await server.restart();
      await s.dispose();
    }
  });

  test('close() while the database is down is bounded and gives up queued audit rows (the local file has them)', async () => {
    const s = await openTestPgStore(server.url, { changePollMs: 60_000 });
    try {
      await server.stop();
      s.store.audit.record(Date.now(), { event: 'lost.at.close' });
      const t0 = Date.now();
      await s.store.close();
      expect(Date.now() - t0).toBeLessThan(20_000);
      expect(s.store.audit.stats()).toMatchObject({ queued: 0, failed: 1 });
    } finally {
      await server.restart();
      await s.dispose();
    }
  });
});

describe('postgres store: timeouts and session settings', () => {
  test('a statement stuck behind a lock is cut by statement_timeout and reported as TESSERA_ERR_STORE_UNAVAILABLE', async () => {
    const s = await openTestPgStore(server.url, { pool: { statementTimeoutMs: 500 } });
    const holder = new pg.Client({ connectionString: server.url });
    await holder.connect();
    try {
      const tok = await s.store.tokens.create('locked', 'spiffe://example.org/locked', Date.now(), 600_000);
      await holder.query('BEGIN');
      await holder.query('SELECT * FROM join_tokens WHERE hash = $1 FOR UPDATE', [tok.hash]);
      const e = await s.store.inventory.recordWithToken(svid('locked'), tok.hash, Date.now()).catch((err) => err);
      expect(isTesseraError(e, 'TESSERA_ERR_STORE_UNAVAILABLE')).toBe(true);
      expect(e.details.sqlstate).toBe('57014');
      await holder.query('ROLLBACK');
      expect(await s.store.inventory.find('locked')).toBeUndefined();
      expect(await s.store.inventory.recordWithToken(svid('locked'), tok.hash, Date.now())).toBe(true);
    } finally {
      await holder.end();
      await s.dispose();
    }
  });

  test('every pooled connection names the replica and carries the configured timeouts', async () => {
    const conn = await pgConnectionConfig(server.url);
    const settings = { ...DEFAULT_POOL_SETTINGS, statementTimeoutMs: 4_321, idleInTransactionTimeoutMs: 7_654 };
    const db = new PgDatabase(conn, settings, { info: () => undefined, warn: () => undefined, error: () => undefined }, 'tessera-control-plane cp-settings');
    try {
      const show = async (name: string) => (await db.query<Record<string, string>>(`SHOW ${name}`)).rows[0]![name];
      expect(await show('statement_timeout')).toBe('4321ms');
      expect(await show('idle_in_transaction_session_timeout')).toBe('7654ms');
      expect(await show('application_name')).toBe('tessera-control-plane cp-settings');
      const own = db.newClient();
      await own.connect();
      expect((await own.query('SHOW statement_timeout')).rows[0].statement_timeout).toBe('4321ms');
      await own.end();
    } finally {
      await db.close();
    }
  });
});
