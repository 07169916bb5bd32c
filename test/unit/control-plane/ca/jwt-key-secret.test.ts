// JWT-SVID keys of their own in a read-only CA directory (audit 61h F2: derived from a plug-in Secret's intermediate,
// they changed at once when it was renewed): jwt-signing-key.pem signs, .next is published before it signs and
// .previous after; a key others can read, not P-256, or a .next without a current one is refused with a code. Opened
// through openJwtKeys on a read-only CA, the files win over the derived keys.
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { signJwtSvid, validateJwtSvid } from '../../../../common/spiffe/jwt-svid.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { createRoot } from '../../../../control-plane/src/ca/authority.js';
import { JWT_KEY_FILES, readJwtKeyFiles } from '../../../../control-plane/src/ca/jwt-key-secret.js';
import { openJwtKeys } from '../../../../control-plane/src/ca/open-jwt-keys.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';

const tmp = tempDirPerTest();
const NOW = Date.UTC(2026, 11, 1);
const ecPem = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

function caDir(files: Record<string, string>, mode = 0o400): string {
  const dir = join(tmp.dir, 'ca');
  mkdirSync(dir, { recursive: true });
  for (const [name, pem] of Object.entries(files)) writeFileSync(join(dir, name), pem, { mode });
  return dir;
}

const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
};

describe('readJwtKeyFiles', () => {
  test('none: null (the keys are derived then)', () => {
    expect(readJwtKeyFiles(caDir({}))).toBeNull();
  });

  test('current signs; previous, current and next are published in that order; a token of any validates', () => {
    const dir = caDir({ [JWT_KEY_FILES.previous]: ecPem(), [JWT_KEY_FILES.current]: ecPem(), [JWT_KEY_FILES.next]: ecPem() });
    const keys = readJwtKeyFiles(dir)!;
    const published = keys.published();
    expect(published).toHaveLength(3);
    expect(published[1]!.keyId).toBe(keys.active().keyId);
    const a = keys.active();
    const token = signJwtSvid({ privateKey: a.privateKey, keyId: a.keyId, spiffeId: 'spiffe://example.org/w', audience: ['a'], issuedAtMs: NOW, expiresAtMs: NOW + 300_000 });
    const bundles = new Map([['example.org', new Map(published.map((k) => [k.keyId, k.publicKey]))]]);
    expect(validateJwtSvid(token, 'a', bundles, NOW).spiffeId.toString()).toBe('spiffe://example.org/w');
  });

  test('a key others can read: TESSERA_ERR_CA_KEY_EXPOSED', () => {
    expect(codeOf(() => readJwtKeyFiles(caDir({ [JWT_KEY_FILES.current]: ecPem() }, 0o644)))).toBe('TESSERA_ERR_CA_KEY_EXPOSED');
  });

  test.each([
    ['an RSA key', () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string],
    ['a P-384 key', () => generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string],
    ['not a key', () => 'hello'],
  ])('%s as jwt-signing-key.pem: TESSERA_ERR_CA_STATE_CORRUPT', (_what, pem) => {
    expect(codeOf(() => readJwtKeyFiles(caDir({ [JWT_KEY_FILES.current]: pem() })))).toBe('TESSERA_ERR_CA_STATE_CORRUPT');
  });

  test('a next key without a current one: TESSERA_ERR_CA_STATE_CORRUPT', () => {
    expect(codeOf(() => readJwtKeyFiles(caDir({ [JWT_KEY_FILES.next]: ecPem() })))).toBe('TESSERA_ERR_CA_STATE_CORRUPT');
  });
});

test('openJwtKeys on a read-only CA: the directory\'s own keys win over keys derived from its CA keys', async () => {
  const td = TrustDomain.parse('example.org');
  const root = await createRoot(td, 'aaaa', NOW, 86_400_000);
  const authorities = [{ record: { id: 'aaaa', state: 'active' as const, createdAtMs: NOW, rootCertFile: 'r.crt', rootNotAfterMs: NOW + 86_400_000, intermediates: [] }, root: { cert: root.cert, key: root.key }, intermediates: [] }];
  const open = () =>
    openJwtKeys({ dataDir: tmp.dir, clock: { nowMs: () => NOW }, audit: { record: () => {} } as never, log: { info: () => {} }, derivedFrom: { trustDomain: td.name, authorities: () => authorities }, onChange: () => {} });
  const derived = (await open()).keys.active().keyId;
  caDir({ [JWT_KEY_FILES.current]: ecPem() });
  const own = await open();
  expect(own.keys.active().keyId).not.toBe(derived);
  expect(own.keys.published().map((k) => k.keyId)).toEqual([own.keys.active().keyId]);
});
