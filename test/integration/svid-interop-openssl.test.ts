// Interop both ways with an independent X.509 implementation: OpenSSL verifies Tessera's SVIDs, and
// `tessera svid verify` judges certificates made by the openssl command line.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { TestCa } from '../helpers/test-ca.js';
import { makeTempDir, run, tessera } from '../helpers/run.js';
import { encodePem } from '../../common/pki/pem.js';

const ID = 'spiffe://example.org/ns/default/sa/web';
let dir: string;
let cleanup: () => Promise<void>;
let ca: TestCa;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  ca = await TestCa.create();
  await writeFile(join(dir, 'root.pem'), ca.bundlePem());
  await writeFile(join(dir, 'int.pem'), encodePem('CERTIFICATE', ca.intermediate.cert.raw));
});
afterAll(() => cleanup());

describe('openssl verify accepts SVIDs minted by Tessera', () => {
  test.each(['sslclient', 'sslserver'])('-purpose %s', async (purpose) => {
    const s = await ca.mintSvid(ID);
    await writeFile(join(dir, `leaf-${purpose}.pem`), encodePem('CERTIFICATE', s.leaf.raw));
    const r = await run('openssl', ['verify', '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'int.pem'), '-purpose', purpose, join(dir, `leaf-${purpose}.pem`)]);
    expect(r.stdout + r.stderr).toContain(': OK');
    expect(r.code).toBe(0);
  });

  test('and rejects one signed by a foreign CA', async () => {
    const other = await TestCa.create();
    const s = await other.mintSvid(ID);
    await writeFile(join(dir, 'foreign.pem'), s.chainPem);
    const r = await run('openssl', ['verify', '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'int.pem'), join(dir, 'foreign.pem')]);
    expect(r.code).not.toBe(0);
  });
});

// Each check writes and verifies its own files: they run side by side.
describe.concurrent('tessera svid verify judges certificates made with the openssl command line', () => {
  const o = (args: string[]) => run('openssl', args, { cwd: dir });
  beforeAll(async () => {
    await o(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ossl-root.key', '-out', 'ossl-root.pem',
      '-days', '2', '-subj', '/CN=OpenSSL Root', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    await o(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'evil-root.key', '-out', 'evil-root.pem',
      '-days', '2', '-subj', '/CN=OpenSSL Root', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  });
  const leaf = async (name: string, ext: string[], root = 'ossl-root') => {
    const r = await o(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`,
      '-days', '1', '-subj', '/O=OpenSSL Leaf', '-CA', `${root}.pem`, '-CAkey', `${root}.key`, ...ext.flatMap((e) => ['-addext', e])]);
    expect(r.code, r.stderr).toBe(0);
    return join(dir, `${name}.pem`);
  };
  const verify = async (cert: string, extra: string[] = []) => {
    const r = await tessera(['svid', 'verify', '--bundle', join(dir, 'ossl-root.pem'), ...extra, cert]);
    return { code: r.code, out: JSON.parse(r.stdout) as Record<string, unknown> };
  };
  const good = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', `subjectAltName=URI:${ID}`];

  test('a well-formed SVID is valid', async () => {
    const { code, out } = await verify(await leaf('good', good));
    expect(out).toMatchObject({ valid: true, spiffeId: ID, reason: null });
    expect(typeof out.notAfter).toBe('string');
    expect(code).toBe(0);
  });
  test('--id must match', async () => {
    const cert = await leaf('good2', good);
    expect((await verify(cert, ['--id', ID])).code).toBe(0);
    expect(await verify(cert, ['--id', 'spiffe://example.org/other'])).toMatchObject({ code: 1, out: { valid: false, reason: 'id_mismatch' } });
  });
  test('--at past the expiry says expired', async () => {
    const { code, out } = await verify(await leaf('good3', good), ['--at', '2099-01-01T00:00:00Z']);
    expect(out).toMatchObject({ valid: false, reason: 'expired', spiffeId: ID });
    expect(code).toBe(1);
  });
  test.each([
    ['ca-true', ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,digitalSignature', `subjectAltName=URI:${ID}`], 'TESSERA_ERR_SVID_LEAF_IS_CA'],
    ['two-uris', ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', `subjectAltName=URI:${ID},URI:${ID}2`], 'TESSERA_ERR_SVID_MULTIPLE_URI_SANS'],
    ['no-uri', ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'subjectAltName=DNS:web.example.org'], 'TESSERA_ERR_SVID_NO_URI_SAN'],
    ['https-uri', ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'subjectAltName=URI:https://example.org/web'], 'TESSERA_ERR_SVID_NOT_SPIFFE_ID'],
    ['cert-sign', ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyCertSign', `subjectAltName=URI:${ID}`], 'TESSERA_ERR_SVID_LEAF_KEY_CERT_SIGN'],
    ['no-ds', ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,keyEncipherment', `subjectAltName=URI:${ID}`], 'TESSERA_ERR_SVID_NO_DIGITAL_SIGNATURE'],
  ])('%s is refused with %#', async (name, ext, code) => {
    const r = await verify(await leaf(name, ext));
    expect(r.code).toBe(1);
    expect(r.out).toMatchObject({ valid: false, reason: 'bad_svid', code });
  });
  // An outside audit: a root naming two foreign trust domains (or one with an upper-case scheme) counted as naming
  // none, so it anchored whatever domain the leaf claimed.
  test.each([
    ['two foreign domains', 'subjectAltName=URI:spiffe://evil.org,URI:spiffe://other.org'],
    ['an upper-case scheme', 'subjectAltName=URI:SPIFFE://evil.org'],
    ['the leaf domain and another', 'subjectAltName=URI:spiffe://evil.org,URI:spiffe://example.org'],
  ])('a root whose SPIFFE SANs name %s serves only those: not a leaf of another domain', async (name, san) => {
    const root = `named-${name.replaceAll(' ', '-')}`;
    await o(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${root}.key`, '-out', `${root}.pem`, '-days', '2', '-subj', '/CN=Partner Root',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-addext', san]);
    const other = await leaf(`${root}-leaf`, ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'subjectAltName=URI:spiffe://unnamed.test/ns/default/sa/admin'], root);
    const r = await tessera(['svid', 'verify', '--bundle', join(dir, `${root}.pem`), other]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ valid: false });
    if (name === 'the leaf domain and another') {
      const own = await leaf(`${root}-own`, good, root);
      expect((await tessera(['svid', 'verify', '--bundle', join(dir, `${root}.pem`), own])).code).toBe(0);
    }
  });
  test('signed by a same-named but different root: unknown CA', async () => {
    const r = await verify(await leaf('evil', good, 'evil-root'));
    expect(r.out).toMatchObject({ valid: false, reason: 'unknown_ca' });
  });
  test('usage errors exit 2; unreadable files exit 1 with a code', async () => {
    expect((await tessera(['svid', 'verify'])).code).toBe(2);
    expect((await tessera(['svid', 'verify', '--bundle', 'x', '--bogus', 'y', 'z'])).code).toBe(2);
    const r = await tessera(['svid', 'verify', '--bundle', join(dir, 'missing.pem'), join(dir, 'missing.pem')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('TESSERA_ERR_CLI_FILE_UNREADABLE');
  });
});
