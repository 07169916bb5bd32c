// The edge's certificate files, which it reads again whenever they change: a FIFO, a device or a directory put in a
// file's place, or a file past the bound, is refused at once with the edge's code (the previous certificates stay),
// never read: a FIFO froze the event loop, a link to /dev/zero grew the process until it aborted.
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
