// The standalone injector (control-plane/src/injector/main.ts) in-process on loopback: a renewed serving
// certificate written over the files (as the kubelet updates a Secret) is served to new connections, a half-written
// pair (key of another certificate) is not.
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { connect } from 'node:tls';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { parseInjectorFileConfig } from '../../../control-plane/src/injector/injector-file-config.js';
import { type InjectorHandle, startInjector } from '../../../control-plane/src/injector/main.js';
import { until } from '../../helpers/until.js';
import { makeTempDir } from '../../helpers/run.js';
import { INJECTOR_HOST, servingPki, testBundlePem } from './fixtures.js';

let dir: string;
let cleanup: () => Promise<void>;
let injector: InjectorHandle | undefined;
const warnings: string[] = [];
const log = { info: () => {}, warn: (_o: object, m: string) => warnings.push(m), error: () => {} };

beforeEach(async () => {
  ({ dir, cleanup } = await makeTempDir());
});
afterEach(async () => {
  await injector?.close();
  injector = undefined;
  await cleanup();
});

/** The fingerprint of the leaf the injector serves to a new connection. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, servername: INJECTOR_HOST, rejectUnauthorized: false }, () => {
      const fp = new X509Certificate(s.getPeerCertificate().raw).fingerprint256;
      s.end();
      resolve(fp);
    });
    s.on('error', reject);
  });
}

test('a renewed certificate is served to new connections; a key that does not fit is not', async () => {
  const first = await servingPki();
  await writeFile(join(dir, 'tls.crt'), first.certPem);
  await writeFile(join(dir, 'tls.key'), first.keyPem);
  await writeFile(join(dir, 'bundle.pem'), await testBundlePem());
  const yaml = ['listen: 127.0.0.1:0', 'certFile: tls.crt', 'keyFile: tls.key', 'bundleFile: bundle.pem', 'proxyImage: tessera:0.1.0', 'controlPlaneAddress: cp.example:8443'].join('\n');
  const config = parseInjectorFileConfig(yaml, join(dir, 'injector.yaml'), { version: '0.1.0' });
  injector = await startInjector(config, { log, certReloadMs: 50 });
  const port = Number(injector.address.split(':').pop());
  const leafOf = (pem: string) => new X509Certificate(pem).fingerprint256;
  expect(await servedFingerprint(port)).toBe(leafOf(first.certPem));

  // Half-updated: a new certificate with the old key. Refused; the old pair stays.
  const second = await servingPki();
  await writeFile(join(dir, 'tls.crt'), second.certPem);
  await until('the mismatched pair to be refused', () => warnings.some((w) => w.includes('not reloaded')), 5_000, 25);
  expect(await servedFingerprint(port)).toBe(leafOf(first.certPem));

  await writeFile(join(dir, 'tls.key'), second.keyPem);
  await until('the renewed certificate to be served', async () => (await servedFingerprint(port)) === leafOf(second.certPem), 5_000, 25);
});
