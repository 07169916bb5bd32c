// The edge's certificate files, which it reads again whenever they change: a FIFO, a device or a directory put in a
// file's place, or a file past the bound, is refused at once with the edge's code (the previous certificates stay),
// never read: a FIFO froze the event loop, a link to /dev/zero grew the process until it aborted. Refused files at a
// worker's start give way to the siblings' last good set.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, expect, test } from 'vitest';
import { TesseraError } from '../../../../common/errors.js';
import { EdgeCertificates } from '../../../../proxy/src/edge/edge-certificates.js';
import { type MintedSvid, TestCa } from '../../../helpers/test-ca.js';

let ca: TestCa;
let cert: MintedSvid;
let dir: string;
beforeAll(async () => {
  ca = await TestCa.create({ trustDomain: 'web.test' });
  cert = await ca.mintSvid('spiffe://web.test/edge', { dnsSans: ['edge.example.test'] });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function load(files: { certFile: string; keyFile: string }): EdgeCertificates {
  return new EdgeCertificates({ defaultCert: { serverNames: [], ...files }, sni: [], tlsMinVersion: '1.3', onReload: () => undefined });
}

test('a chain repeated to ~150 KB (the same certificates twice) is refused: served, every TLS client refused the handshake', () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-edge-certs-'));
  const files = { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') };
  writeFileSync(files.keyFile, cert.keyPem, { mode: 0o600 });
  writeFileSync(files.certFile, cert.chainPem.repeat(Math.ceil(150_000 / cert.chainPem.length)));
  expect(() => load(files)).toThrow(/twice/);
  writeFileSync(files.certFile, cert.chainPem);
  expect(load(files).notAfter).toBeTruthy();
});

test('a FIFO, a device, a directory or an oversized file in place of the certificate or key is refused at once, never read', () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-edge-certs-'));
  const files = { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') };
  const write = () => {
    for (const f of Object.values(files)) rmSync(f, { recursive: true, force: true });
    writeFileSync(files.certFile, cert.chainPem);
    writeFileSync(files.keyFile, cert.keyPem, { mode: 0o600 });
  };
  write();
  expect(load(files).notAfter).toBeTruthy();
  for (const path of Object.values(files)) {
    const kinds: [string, () => void][] = [
      ['FIFO', () => execFileSync('mkfifo', [path])],
      ['/dev/zero', () => symlinkSync('/dev/zero', path)],
      ['directory', () => mkdirSync(path)],
      ['5 MiB', () => writeFileSync(path, cert.chainPem.repeat(Math.ceil((5 << 20) / cert.chainPem.length)))],
    ];
    for (const [kind, make] of kinds) {
      write();
      rmSync(path);
      make();
      const t0 = Date.now();
      try {
        load(files);
        expect.unreachable(`loaded with a ${kind} as ${path}`);
      } catch (e) {
        expect(e, kind).toBeInstanceOf(TesseraError);
        expect((e as TesseraError).code, kind).toBe('TESSERA_ERR_EDGE_CERT_INVALID');
        expect((e as Error).message).toContain(path);
      }
      expect(Date.now() - t0, kind).toBeLessThan(2_000);
    }
  }
});

test('refused files at start give way to the last good set (checked again whole); a bad last good set does not', async () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-edge-certs-'));
  const files = { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') };
  const other = await ca.mintSvid('spiffe://web.test/other', { dnsSans: ['edge.example.test'] });
  writeFileSync(files.certFile, cert.chainPem);
  writeFileSync(files.keyFile, cert.keyPem, { mode: 0o600 });
  const loaded: unknown[] = [];
  const results: string[] = [];
  const make = (lastGood?: { pairs: { cert: string; key: string }[] }) =>
    new EdgeCertificates({ defaultCert: { serverNames: [], ...files }, sni: [], tlsMinVersion: '1.3', onReload: (r) => void results.push(r), onLoaded: (t) => void loaded.push(t), ...(lastGood ? { lastGood } : {}) });
  const good = { pairs: [{ cert: cert.chainPem, key: cert.keyPem }] };
  make();
  expect(loaded).toEqual([good]);
  // A key that does not match the certificate on disk: the last good set is served, and reported loaded again.
  writeFileSync(files.keyFile, other.keyPem, { mode: 0o600 });
  expect(() => make()).toThrow(/the key does not match the certificate/);
  const fallback = make(good);
  expect(fallback.defaultOptions.cert).toBe(cert.chainPem);
  expect(results).toEqual(['last-good']);
  expect(loaded).toEqual([good, good]);
  // The last good set is validated whole like files: a mismatched one never becomes the served set.
  expect(() => make({ pairs: [{ cert: cert.chainPem, key: other.keyPem }] })).toThrow(/the key does not match the certificate/);
  // Good files win over the last good set.
  writeFileSync(files.certFile, other.chainPem);
  expect(make(good).defaultOptions.cert).toBe(other.chainPem);
});
