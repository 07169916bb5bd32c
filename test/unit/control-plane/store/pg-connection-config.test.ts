// The PostgreSQL URL as Tessera reads it: fields decoded, the password masked wherever it appears, and TLS options
// per sslmode as libpq means them (require only encrypts unless given a root; verify-ca skips the name check).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseControlPlaneConfig } from '../../../../control-plane/src/config/cp-config.js';
import { pgConnectionConfig, redactPgUrl, resolvePgUrl } from '../../../../control-plane/src/store/postgres/pg-connection-config.js';

let dir: string;
let ca: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-pgurl-'));
  ca = join(dir, 'ca.pem');
  await writeFile(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('pgConnectionConfig', () => {
  test('decodes user, password and database; defaults port 5432 and no TLS', async () => {
    const c = await pgConnectionConfig("postgresql://us%40er:p%40ss%3Aw'rd@db.example:6543/my%20db");
    expect(c).toMatchObject({ host: 'db.example', port: 6543, user: 'us@er', password: "p@ss:w'rd", database: 'my db', sslmode: 'disable', ssl: false });
    expect(c.redacted).toBe('postgresql://us%40er:***@db.example:6543/my%20db');
    expect((await pgConnectionConfig('postgres://u@h/d')).port).toBe(5432);
  });

  test('host, port, user, password and dbname may come as parameters (a Unix socket directory as host)', async () => {
    const c = await pgConnectionConfig('postgres:///?host=/run/postgresql&port=5433&user=t&password=s3cret&dbname=tessera');
    expect(c).toMatchObject({ host: '/run/postgresql', port: 5433, user: 't', password: 's3cret', database: 'tessera' });
    expect(c.redacted).not.toContain('s3cret');
  });

  test('the password is masked in the redacted form, and an unparseable URL shows nothing of itself', () => {
    expect(redactPgUrl('postgres://u:hunter2@h:1/d?sslmode=require')).toBe('postgres://u:***@h:1/d?sslmode=require');
    expect(redactPgUrl('postgres://u@h/d?password=hunter2')).not.toContain('hunter2');
    expect(redactPgUrl('hunter2 is not a url')).toBe('(unparseable URL)');
  });

  test('TLS options per sslmode', async () => {
    const rootQ = `sslrootcert=${encodeURIComponent(ca)}`;
    expect((await pgConnectionConfig('postgres://u@h/d?sslmode=disable')).ssl).toBe(false);
    expect((await pgConnectionConfig('postgres://u@h/d?sslmode=require')).ssl).toEqual({ rejectUnauthorized: false });
    const requireWithRoot = await pgConnectionConfig(`postgres://u@h/d?sslmode=require&${rootQ}`);
    expect(requireWithRoot.ssl).toMatchObject({ rejectUnauthorized: true, ca: expect.stringContaining('BEGIN CERTIFICATE') });
    const tlsOf = (c: { ssl: unknown }) => c.ssl as { checkServerIdentity?: () => undefined };
    expect(typeof tlsOf(requireWithRoot).checkServerIdentity).toBe('function');
    const verifyCa = await pgConnectionConfig(`postgres://u@h/d?sslmode=verify-ca&${rootQ}`);
    expect(typeof tlsOf(verifyCa).checkServerIdentity).toBe('function');
    expect(tlsOf(verifyCa).checkServerIdentity?.()).toBeUndefined();
    const full = await pgConnectionConfig(`postgres://u@h/d?sslmode=verify-full&${rootQ}`);
    expect(full.ssl).toMatchObject({ rejectUnauthorized: true });
    expect(tlsOf(full).checkServerIdentity).toBeUndefined();
    expect((await pgConnectionConfig('postgres://u@h/d?sslmode=verify-full&sslrootcert=system')).ssl).toEqual({ rejectUnauthorized: true });
  });

  test('refused: other schemes, prefer/allow, unknown parameters, a missing root file', async () => {
    for (const url of ['http://u@h/d', 'postgres://u@h/d?sslmode=prefer', 'postgres://u@h/d?sslmode=allow', 'postgres://u@h/d?application_name=x', 'postgres://u@h/d?sslmode=disable&sslrootcert=/x']) {
      await expect(pgConnectionConfig(url), url).rejects.toMatchObject({ code: 'TESSERA_ERR_CONFIG_INVALID' });
    }
    await expect(pgConnectionConfig('postgres://u@h/d?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem')).rejects.toMatchObject({ code: 'TESSERA_ERR_CONFIG_UNREADABLE' });
  });

  test('an inline store.url that would be refused at open is refused at config load, naming file, line and key', () => {
    const cp = (url: string) => () => parseControlPlaneConfig(`trustDomain: a.test\ndataDir: ./d\nstore:\n  kind: postgres\n  url: "${url}"\n`, '/etc/tessera/cp.yaml');
    for (const url of ['postgres://u:secret@h/d?sslmode=prefer', 'postgres://u@h/d?application_name=x', 'http://u@h/d', 'postgres://u@h:99999/d']) {
      expect(cp(url), url).toThrowError(expect.objectContaining({ code: 'TESSERA_ERR_CONFIG_INVALID', details: expect.objectContaining({ line: 5, key: 'store.url' }) }));
    }
    expect(cp('postgres://u:secret@h/d?sslmode=prefer')).toThrowError(/^\/etc\/tessera\/cp\.yaml:5: store\.url: postgres:\/\/u:\*+@h\/d\?sslmode=prefer: sslmode=prefer is not supported/);
    expect(cp('postgres://u:secret@h/d?sslmode=prefer')).not.toThrowError(/secret/);
    expect(cp('postgres://u@h/d?sslmode=verify-full&sslrootcert=/not/read/yet.pem')).not.toThrow();
  });

  test('resolvePgUrl trims a url and the content of a urlFile', async () => {
    expect(await resolvePgUrl({ url: '  postgres://u@h/d \n' })).toBe('postgres://u@h/d');
    const f = join(dir, 'url');
    await writeFile(f, '\n postgres://u:pw@h/d\n');
    expect(await resolvePgUrl({ urlFile: f })).toBe('postgres://u:pw@h/d');
  });
});
