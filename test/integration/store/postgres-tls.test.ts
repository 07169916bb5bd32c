// TLS to the database as the URL's sslmode asks, against a real PostgreSQL server with ssl=on and a certificate
// from a CA made by openssl: verify-full (by IP and by name) and verify-ca verify the chain, require only encrypts,
// a server certificate from another CA is refused with TESSERA_ERR_STORE_UNAVAILABLE, and a server without TLS is
// never used in plaintext when TLS was asked for.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../common/errors.js';
import { type PostgresServer, startPostgres } from '../../helpers/postgres-server.js';
import { openTestPgStore } from '../../helpers/postgres-store.js';
import { makeTempDir } from '../../helpers/run.js';

let tlsServer: PostgresServer;
let plainServer: PostgresServer;
let tmp: { dir: string; cleanup: () => Promise<void> };
let otherCa: string;

beforeAll(async () => {
  [tlsServer, plainServer, tmp] = await Promise.all([startPostgres({ tls: true }), startPostgres(), makeTempDir()]);
  otherCa = join(tmp.dir, 'other-ca.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(tmp.dir, 'other.key'), '-out', otherCa, '-days', '1', '-subj', '/CN=other-ca'], { stdio: 'ignore' });
}, 120_000);

afterAll(async () => {
  await tlsServer?.destroy();
  await plainServer?.destroy();
  await tmp?.cleanup();
});

/** The TLS server's URL with another host and query. */
function urlWith(server: PostgresServer, host: string, query: string): string {
  const u = new URL(server.url);
  u.hostname = host;
  u.search = query;
  return u.toString();
}

/** Whether the store's own sessions (by application_name) are encrypted, as the server sees them. */
async function sessionsUseTls(server: PostgresServer, replica: string): Promise<boolean[]> {
  const c = new pg.Client({ connectionString: server.adminUrl.replace(/\?.*$/, ''), ssl: false });
  await c.connect();
  try {
    const r = await c.query('SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1', [`tessera-control-plane ${replica}`]);
    return r.rows.map((row) => row.ssl as boolean);
  } finally {
    await c.end();
  }
}

describe('postgres store over TLS', () => {
  const ca = () => encodeURIComponent(tlsServer.caFile!);
  for (const [name, host, query] of [
    ['verify-full by IP (the certificate has IP:127.0.0.1)', '127.0.0.1', () => `?sslmode=verify-full&sslrootcert=${ca()}`],
    ['verify-full by name (DNS:localhost)', 'localhost', () => `?sslmode=verify-full&sslrootcert=${ca()}`],
    ['verify-ca', '127.0.0.1', () => `?sslmode=verify-ca&sslrootcert=${ca()}`],
    ['require without a root certificate (encrypted, not verified)', '127.0.0.1', () => '?sslmode=require'],
  ] as const) {
    test(`${name}: works, and every session of the store is encrypted`, async () => {
      const replica = `tls-${name.split(' ')[0]}-${host}`;
      const s = await openTestPgStore(urlWith(tlsServer, host, query()), { replica });
      try {
        expect(await s.store.meta.increment(`tls-${name}`)).toBe(1);
        const tls = await sessionsUseTls(tlsServer, replica);
        expect(tls.length).toBeGreaterThan(0);
        expect(tls.every(Boolean)).toBe(true);
      } finally {
        await s.dispose();
      }
    });
  }

  test('a server certificate from another CA is refused (verify-full and verify-ca, and require with that root)', async () => {
    for (const mode of ['verify-full', 'verify-ca', 'require']) {
      const e = await openTestPgStore(urlWith(tlsServer, '127.0.0.1', `?sslmode=${mode}&sslrootcert=${encodeURIComponent(otherCa)}`)).catch((err) => err);
      expect(isTesseraError(e, 'TESSERA_ERR_STORE_UNAVAILABLE'), `${mode}: ${e}`).toBe(true);
      expect(e.message, mode).toMatch(/certificate/i);
    }
  });

  test('verify-full against the platform roots (no sslrootcert) refuses the private CA', async () => {
    const e = await openTestPgStore(urlWith(tlsServer, '127.0.0.1', '?sslmode=verify-full')).catch((err) => err);
    expect(isTesseraError(e, 'TESSERA_ERR_STORE_UNAVAILABLE')).toBe(true);
  });

  test('sslmode=require against a server without TLS is refused, never downgraded to plaintext', async () => {
    const e = await openTestPgStore(urlWith(plainServer, '127.0.0.1', '?sslmode=require')).catch((err) => err);
    expect(isTesseraError(e, 'TESSERA_ERR_STORE_UNAVAILABLE'), String(e)).toBe(true);
    expect(e.message).toMatch(/SSL/);
  });

  test('no sslmode means plaintext (libpq would prefer TLS; Tessera does what the URL says)', async () => {
    const s = await openTestPgStore(urlWith(tlsServer, '127.0.0.1', ''), { replica: 'tls-none' });
    try {
      await s.store.meta.get('x');
      expect(await sessionsUseTls(tlsServer, 'tls-none')).not.toContain(true);
    } finally {
      await s.dispose();
    }
  });
});
