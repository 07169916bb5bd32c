// A sidecar restarted after a CA rotation it lived through, its bootstrap bundle file still the one of before (the
// old root only): with identity.controlPlane.stateDir it kept the trust bundle the control plane pushed beside its
// SVID, as a SPIRE agent keeps its bundle, so the restart verifies its kept SVID and the control plane (both of the
// new root) and is ready with no attestation (its join token is spent). Real control plane, real `tessera proxy`.
import { copyFile, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { createJoinToken, type RunningControlPlane, startControlPlaneProcess, TD, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { type ProxyProcess, startProxyProcess } from '../helpers/proxy-process.js';
import { makeTempDir, tessera } from '../helpers/run.js';
import { until } from '../helpers/until.js';

const API = `spiffe://${TD}/ns/default/sa/api`;

let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane;
let app: ReturnType<typeof createServer>;
const running: ProxyProcess[] = [];

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  app = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const cpDir = join(dir, 'cp');
  // Short SVIDs: the old root's last SVIDs expire, and the old root can be retired, within seconds of the activation.
  cp = await startControlPlaneProcess(cpDir, await writeControlPlaneConfig(cpDir, 'svid: { ttl: 9s, maxTtl: 9s, backdate: 3s }'));
}, 60_000);

afterAll(async () => {
  await Promise.all(running.map((p) => p.stop()));
  await cp?.stop();
  app?.close();
  await cleanup?.();
});

interface Certs {
  serial: string;
  servedSerial: string;
  bundles: { trustDomain: string; fingerprints: string[] }[];
}
const certs = async (p: ProxyProcess) => (await (await fetch(`http://127.0.0.1:${p.admin}/certs`)).json()) as Certs;
const blocks = (pem: string) => pem.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;
/** The control plane's authorities and their live-SVID counts (GET /v1/ca over admin.sock, what `ca status` shows). */
const authorities = async () => (await adminRequest<{ authorities: { id: string; state: string; liveSvids: number }[] }>(cp.dataDir, 'GET', '/v1/ca')).authorities;
const keptBundle = () => readFile(join(dir, 'api-state', `bundle.${TD}.pem`), 'utf8').catch(() => '');

test('restarted after prepare → activate → retire with the old bootstrap bundle: ready from the kept SVID and bundle, no second attestation, renews', async () => {
  // The operator's bootstrap file: a copy of the bundle as it was at install time, never updated.
  const bootstrap = join(dir, 'bootstrap-bundle.pem');
  await copyFile(join(cp.dataDir, 'bundle.pem'), bootstrap);
  await writeFile(join(dir, 'api.token'), await createJoinToken(cp.dataDir, API, 600_000), { mode: 0o600 });
  const config = join(dir, 'api.yaml');
  await writeFile(
    config,
    [
      'identity:',
      `  controlPlane: { address: ${cp.grpc}, bundleFile: ${bootstrap}, joinTokenFile: ./api.token, stateDir: ./api-state }`,
      'inbound:',
      `  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${(app.address() as AddressInfo).port}, protocol: http }`,
      'admin: { listen: 127.0.0.1:0 }',
      'telemetry: { accessLog: off }',
      '',
    ].join('\n'),
  );
  const first = await startProxyProcess(config, 30_000);
  running.push(first);
  await until('the pushed bundle is kept', async () => blocks(await keptBundle()) === 1, 10_000);
  expect((await stat(join(dir, 'api-state', `bundle.${TD}.pem`))).mode & 0o777).toBe(0o600);

  const oldId = (await authorities()).find((a) => a.state === 'active')!.id;
  expect((await tessera(['ca', 'prepare', '--data-dir', cp.dataDir])).code).toBe(0);
  await until('the kept bundle holds both roots', async () => blocks(await keptBundle()) === 2, 15_000);
  expect((await tessera(['ca', 'activate', '--data-dir', cp.dataDir])).code).toBe(0);
  // Retired once its SVIDs expired (by the command, or by the control plane's tick if that comes first): the wait
  // reads the old authority's live-SVID count, not a `ca retire` started every half second.
  const retired = await tessera(['ca', 'retire', '--data-dir', cp.dataDir]);
  if (retired.code !== 0) {
    expect(retired.stderr).toContain('TESSERA_ERR_CA_AUTHORITY_IN_USE');
    await until('no live SVID of the old authority', async () => (await authorities()).every((a) => a.id !== oldId || a.liveSvids === 0), 40_000, 250);
    // None live that the control plane knows of, and it knows them all here: the svid.maxTtl wait is not needed.
    const again = await tessera(['ca', 'retire', '--data-dir', cp.dataDir, '--force']);
    expect(again.code, again.stderr).toBe(0);
  }
  const current = await readFile(join(cp.dataDir, 'bundle.pem'), 'utf8');
  await until('the kept bundle is the new root alone', async () => (await keptBundle()) === current, 15_000);
  // The bootstrap file does not name the root everything now chains to.
  expect(current).not.toBe(await readFile(bootstrap, 'utf8'));
  const before = await certs(first);
  expect(await first.stop()).toBe(0);

  const second = await startProxyProcess(config, 30_000);
  running.push(second);
  const logs = second.stdout() + second.stderr();
  expect(logs).toContain('trust bundle restored from the state dir');
  expect(logs).toContain('SVID restored from the state dir');
  const after = await certs(second);
  expect(after.servedSerial).toBe(after.serial);
  expect(after.bundles.find((b) => b.trustDomain === TD)!.fingerprints).toEqual(before.bundles.find((b) => b.trustDomain === TD)!.fingerprints);
  // It renews over a control plane it verified with the kept root; the token was never asked for again.
  await until('a renewal after the restart', async () => (await certs(second)).serial !== after.serial, 15_000);
  const lines = (await readFile(join(cp.dataDir, 'audit.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { event: string; spiffeId?: string; attestedAs?: string });
  expect(lines.filter((e) => e.event === 'svid.issued' && e.spiffeId === API && e.attestedAs?.startsWith('join_token:'))).toHaveLength(1);
}, 120_000);
