// The control plane's config as GET /config shows it: parsed by the real loader, a PostgreSQL URL's password is
// replaced, a urlFile's path and an SQLite store are shown as they are, and nothing else changes.
import { describe, expect, test } from 'vitest';
import { parseControlPlaneConfig } from '../../../../control-plane/src/config/cp-config.js';
import { redactedConfig } from '../../../../control-plane/src/config/redact-config.js';

const parse = (...store: string[]) => parseControlPlaneConfig(['trustDomain: example.org', 'dataDir: ./data', ...store, ''].join('\n'), '/etc/tessera/cp.yaml', {});

describe('redactedConfig (control plane)', () => {
  test('a PostgreSQL URL loses its password, and only that', () => {
    const c = parse('store:', '  kind: postgres', '  url: postgres://tessera:hunter2@db:5432/tessera?sslmode=verify-full&sslrootcert=/ca.pem');
    const r = redactedConfig(c);
    expect(JSON.stringify(r)).not.toContain('hunter2');
    expect(r.store).toMatchObject({ kind: 'postgres', source: { url: 'postgres://tessera:***@db:5432/tessera?sslmode=verify-full&sslrootcert=/ca.pem' } });
    expect({ ...r, store: undefined }).toEqual({ ...c, store: undefined });
  });

  test('a urlFile (a path, no secret) and an SQLite store are shown as they are', () => {
    const withFile = parse('store:', '  kind: postgres', '  urlFile: /run/secrets/pg-url');
    expect(redactedConfig(withFile)).toBe(withFile);
    const sqlite = parse();
    expect(redactedConfig(sqlite)).toBe(sqlite);
  });
});
