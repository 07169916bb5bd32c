// The standalone injector (control-plane/src/injector/main.ts) in-process on loopback: a renewed serving
// certificate written over the files (as the kubelet updates a Secret) is served to new connections, a half-written
// pair (key of another certificate) is not; a Secret volume's `..data` swap is seen at once, not at the next poll.
import { X509Certificate } from 'node:crypto';
import { mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import { connect } from 'node:tls';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { parseInjectorFileConfig } from '../../../../control-plane/src/injector/injector-file-config.js';
import { type InjectorHandle, startInjector } from '../../../../control-plane/src/injector/main.js';
import { until } from '../../../helpers/until.js';
import { makeTempDir } from '../../../helpers/run.js';
import { INJECTOR_HOST, servingPki, testBundlePem } from '../../../helpers/injector-fixtures.js';
import { systemClock } from '../../../../common/clock.js';

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

const leafOf = (pem: string) => new X509Certificate(pem).fingerprint256;

/** Starts the injector on dir/tls.crt + dir/tls.key (written by the test) and a test bundle; its port. */
async function startOnFiles(certReloadMs: number): Promise<number> {
  await writeFile(join(dir, 'bundle.pem'), await testBundlePem());
  const yaml = ['listen: 127.0.0.1:0', 'certFile: tls.crt', 'keyFile: tls.key', 'bundleFile: bundle.pem', 'proxyImage: tessera:0.1.0', 'controlPlaneAddress: cp.example:8443'].join('\n');
  const config = parseInjectorFileConfig(yaml, join(dir, 'injector.yaml'), { version: '0.1.0' });
  injector = await startInjector(config, { log, certReloadMs, drainMs: 0, preciseClock: systemClock });
  return Number(injector.address.split(':').pop());
}

test('a renewed certificate is served to new connections; a key that does not fit is not', async () => {
  const first = await servingPki();
  await writeFile(join(dir, 'tls.crt'), first.certPem);
  await writeFile(join(dir, 'tls.key'), first.keyPem);
  const port = await startOnFiles(50);
  expect(await servedFingerprint(port)).toBe(leafOf(first.certPem));

  // Half-updated: a new certificate with the old key. Refused; the old pair stays.
  const second = await servingPki();
  await writeFile(join(dir, 'tls.crt'), second.certPem);
  await until('the mismatched pair to be refused', () => warnings.some((w) => w.includes('not reloaded')), 5_000, 25);
  expect(await servedFingerprint(port)).toBe(leafOf(first.certPem));

  await writeFile(join(dir, 'tls.key'), second.keyPem);
  await until('the renewed certificate to be served', async () => (await servedFingerprint(port)) === leafOf(second.certPem), 5_000, 25);
});

test('a Secret volume `..data` swap is served without waiting for the poll (the one file watcher sees it)', async () => {
  // tls.crt -> ..data/tls.crt, ..data -> ..<generation>, as the kubelet lays a Secret volume out.
  const generation = async (stamp: string, pair: { certPem: string; keyPem: string }) => {
    await mkdir(join(dir, stamp));
    await writeFile(join(dir, stamp, 'tls.crt'), pair.certPem);
    await writeFile(join(dir, stamp, 'tls.key'), pair.keyPem);
    await symlink(stamp, join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  };
  const first = await servingPki();
  await generation('..2026_01_01_00_00_00.1', first);
  await symlink(join('..data', 'tls.crt'), join(dir, 'tls.crt'));
  await symlink(join('..data', 'tls.key'), join(dir, 'tls.key'));
  // A poll far beyond the test's bound: only a file-system event can bring the new pair in time.
  const port = await startOnFiles(600_000);
  expect(await servedFingerprint(port)).toBe(leafOf(first.certPem));

  const second = await servingPki();
  await generation('..2026_01_01_00_10_00.2', second);
  await until('the swapped-in certificate to be served', async () => (await servedFingerprint(port)) === leafOf(second.certPem), 5_000, 25);
});
