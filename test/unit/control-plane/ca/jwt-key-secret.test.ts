// JWT-SVID keys of their own in a read-only CA directory (audit 61h F2: derived from a plug-in Secret's intermediate,
// they changed at once when it was renewed): jwt-signing-key.pem signs, .next is published before it signs and
// .previous after, and the derived keys stay published beside them, signing while there is no jwt-signing-key.pem
// (audit 61k F1: adopting the files refused tokens across the rollout). A key others can read, not P-256, encrypted,
// the same key twice, a FIFO or a link to nowhere is refused with a code naming the file.

import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { signJwtSvid, validateJwtSvid } from '../../../../common/spiffe/jwt-svid.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { createRoot } from '../../../../control-plane/src/ca/authority.js';
import { DerivedJwtKeys } from '../../../../control-plane/src/ca/derived-jwt-keys.js';
import { JWT_KEY_FILES, readJwtKeyFiles, SecretJwtKeys } from '../../../../control-plane/src/ca/jwt-key-secret.js';
import { openJwtKeys } from '../../../../control-plane/src/ca/open-jwt-keys.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';

const tmp = tempDirPerTest();
const NOW = Date.UTC(2026, 11, 1);
const TD = TrustDomain.parse('example.org');
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

  test('each file in its slot; with the derived keys: the current one signs, every key is published', async () => {
    const dir = caDir({ [JWT_KEY_FILES.previous]: ecPem(), [JWT_KEY_FILES.current]: ecPem(), [JWT_KEY_FILES.next]: ecPem() });
    const files = readJwtKeyFiles(dir)!;
    const derived = new DerivedJwtKeys(TD.name, await authorities());
    const keys = new SecretJwtKeys(files, derived);
    expect(keys.active().keyId).toBe(files.current!.keyId);
    const published = keys.published().map((k) => k.keyId);
    expect(published).toEqual([derived.active().keyId, files.previous!.keyId, files.current!.keyId, files.next!.keyId]);
    const a = keys.active();
    const token = signJwtSvid({ privateKey: a.privateKey, keyId: a.keyId, spiffeId: 'spiffe://example.org/w', audience: ['a'], issuedAtMs: NOW, expiresAtMs: NOW + 300_000 });
    const bundles = new Map([['example.org', new Map(keys.published().map((k) => [k.keyId, k.publicKey] as const))]]);
    expect(validateJwtSvid(token, 'a', bundles, NOW).spiffeId.toString()).toBe('spiffe://example.org/w');
  });

  test('adopting the files is a rotation: a .next alone is published and the derived key still signs', async () => {
    const files = readJwtKeyFiles(caDir({ [JWT_KEY_FILES.next]: ecPem() }))!;
    const derived = new DerivedJwtKeys(TD.name, await authorities());
    const keys = new SecretJwtKeys(files, derived);
    expect(keys.active().keyId).toBe(derived.active().keyId);
    expect(keys.published().map((k) => k.keyId)).toEqual([derived.active().keyId, files.next!.keyId]);
  });

  test('a key others can read: TESSERA_ERR_CA_KEY_EXPOSED', () => {
    expect(codeOf(() => readJwtKeyFiles(caDir({ [JWT_KEY_FILES.current]: ecPem() }, 0o644)))).toBe('TESSERA_ERR_CA_KEY_EXPOSED');
  });

  test.each([
    ['an RSA key', () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string],
    ['a P-384 key', () => generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string],
    ['not a key', () => 'hello'],
    ['an encrypted key', () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }) as string],
  ])('%s as jwt-signing-key.pem: TESSERA_ERR_CA_STATE_CORRUPT', (_what, pem) => {
    expect(codeOf(() => readJwtKeyFiles(caDir({ [JWT_KEY_FILES.current]: pem() })))).toBe('TESSERA_ERR_CA_STATE_CORRUPT');
  });

  // Audit 61k F3–F5: the same key twice started and published one kid twice (a bundle its validators refuse whole);
  // a FIFO hung the start; a link to nowhere counted as no file, and the derived key signed.
  test('the same key twice, a FIFO, a link to nowhere: TESSERA_ERR_CA_STATE_CORRUPT naming the file', () => {
    const same = ecPem();
    expect(codeOf(() => readJwtKeyFiles(caDir({ [JWT_KEY_FILES.current]: same, [JWT_KEY_FILES.next]: same })))).toBe('TESSERA_ERR_CA_STATE_CORRUPT');
    const fifoDir = join(tmp.dir, 'fifo');
    mkdirSync(fifoDir);
    execFileSync('mkfifo', ['-m', '0400', join(fifoDir, JWT_KEY_FILES.current)]);
    expect(codeOf(() => readJwtKeyFiles(fifoDir))).toBe('TESSERA_ERR_CA_STATE_CORRUPT');
    const linkDir = join(tmp.dir, 'link');
    mkdirSync(linkDir);
    symlinkSync('/nonexistent/key.pem', join(linkDir, JWT_KEY_FILES.current));
    expect(codeOf(() => readJwtKeyFiles(linkDir))).toBe('TESSERA_ERR_CA_STATE_CORRUPT');
  });
});

async function authorities() {
  const root = await createRoot(TD, 'aaaa', NOW, 86_400_000);
  return [{ record: { id: 'aaaa', state: 'active' as const, createdAtMs: NOW, rootCertFile: 'r.crt', rootNotAfterMs: NOW + 86_400_000, intermediates: [] }, root: { cert: root.cert, key: root.key }, intermediates: [] }];
}

test('openJwtKeys on a read-only CA: the directory\'s current key signs, the derived one stays published', async () => {
  const list = await authorities();
  const open = () =>
    openJwtKeys({ dataDir: tmp.dir, clock: { nowMs: () => NOW }, audit: { record: () => {} } as never, log: { info: () => {}, warn: () => {} }, derivedFrom: { trustDomain: TD.name, authorities: () => list }, onChange: () => {} });
  const derived = (await open()).keys.active().keyId;
  caDir({ [JWT_KEY_FILES.current]: ecPem() });
  const own = await open();
  expect(own.keys.active().keyId).not.toBe(derived);
  expect(own.keys.published().map((k) => k.keyId)).toEqual([derived, own.keys.active().keyId]);
});

test('openJwtKeys on a writable CA: jwt-signing-key files there are not read, and a warning names them', async () => {
  caDir({ [JWT_KEY_FILES.current]: ecPem(), [JWT_KEY_FILES.next]: ecPem() });
  const warnings: Record<string, unknown>[] = [];
  const opened = await openJwtKeys({ dataDir: tmp.dir, clock: { nowMs: () => NOW }, audit: { record: () => {} } as never, log: { info: () => {}, warn: (o) => warnings.push(o) }, onChange: () => {} });
  const fromFiles = readJwtKeyFiles(join(tmp.dir, 'ca'))!;
  expect(opened.keys.active().keyId).not.toBe(fromFiles.current!.keyId);
  expect(warnings).toEqual([{ event: 'jwt_key.files_ignored', code: 'TESSERA_ERR_JWT_KEY_FILES_IGNORED', files: [JWT_KEY_FILES.current, JWT_KEY_FILES.next] }]);
});
