// `workers: 2` on a port another process already listens on with SO_REUSEPORT (audit 53b F1), real processes:
// another `workers: 2` proxy (its two workers' reuseport group) or a plain Node server with `reusePort: true`. The
// new proxy must not join that group (the kernel would split new connections between two identities or apps): for
// each listener kind (inbound, outbound, edge) its start fails with TESSERA_ERR_PROXY_LISTEN_FAILED naming the
// address, before it attests, so its join token is still good: once the holders are gone the same token makes it
// ready on the port the first proxy held (its other ports port 0, as the kernel picks them).
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import * as net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createJoinToken, type RunningControlPlane, startControlPlaneProcess, TD, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { freePort } from '../helpers/free-port.js';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir, tessera } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';

const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const KINDS = ['inbound/app', 'outbound/api', 'edge/public'] as const;
type Kind = (typeof KINDS)[number];

let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane;
let app: ReturnType<typeof createServer>;
let appPort: number;
/** The first proxy: `workers: 2`, file identity (api), its inbound on a fixed port. */
let first: ProxyProcess | undefined;
let firstInbound: number;

/** A `workers: 2` config with one listener of each kind, at `at[kind]` or else 127.0.0.1:0. */
function listeners(at: Partial<Record<Kind, number>>): string {
  const addr = (k: Kind) => `127.0.0.1:${at[k] ?? 0}`;
  return [
    'workers: 2',
    'inbound:',
    `  - { name: app, listen: ${addr('inbound/app')}, forwardTo: 127.0.0.1:${appPort} }`,
    'outbound:',
    `  - { name: api, listen: ${addr('outbound/api')}, upstream: 127.0.0.1:1, spiffeId: ${API} }`,
    'edge:',
    '  - name: public',
    `    listen: ${addr('edge/public')}`,
    '    certFile: edge.pem',
    '    keyFile: edge.key',
    '    routes:',
    `      - { host: a.example.test, pathPrefix: /, upstream: 127.0.0.1:${appPort}, unsafePlaintext: true }`,
    'admin: { listen: 127.0.0.1:0 }',
    'telemetry: { accessLog: off }',
    '',
  ].join('\n');
}

/** The second proxy's config (web, a join token from the control plane), its listeners at `at` (else port 0). */
const writeSecond = (at: Partial<Record<Kind, number>>) =>
  writeFile(join(dir, 'web.yaml'), `identity:\n  controlPlane: { address: ${cp.grpc}, bundleFile: ${join(cp.dataDir, 'bundle.pem')}, joinTokenFile: ./web.token }\n${listeners(at)}`);

/** How many SVIDs the control plane issued to web on a join token (its audit log). */
async function attestations(): Promise<number> {
  const lines = (await readFile(join(cp.dataDir, 'audit.log'), 'utf8')).trim().split('\n');
  return lines.map((l) => JSON.parse(l) as { event: string; spiffeId: string; attestedAs: string }).filter((e) => e.event === 'svid.issued' && e.spiffeId === WEB && e.attestedAs.startsWith('join_token:')).length;
}

/** Starts the second proxy, which must fail in its primary before it attests because `port` is held. */
async function expectRefused(kind: Kind, port: number): Promise<void> {
  await writeSecond({ [kind]: port });
  // A start that wrongly succeeds attests (spending the token) and serves until the timeout's SIGTERM drains it.
  const r = await tessera(['proxy', '--config', join(dir, 'web.yaml')], { timeoutMs: 20_000 });
  expect(r.code, `${kind} on ${port}: ${r.stderr}`).toBe(1);
  const [section, name] = kind.split('/');
  expect(r.stderr).toContain(`TESSERA_ERR_PROXY_LISTEN_FAILED: a listener port is already in use: ${section} "${name}" (listen 127.0.0.1:${port}) listen EADDRINUSE: address already in use 127.0.0.1:${port}`);
  expect(r.stderr).toContain('a join token is not spent');
  expect(r.stderr).not.toContain('proxy worker');
  expect(r.stdout).not.toContain('tessera proxy: ready');
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  app = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  appPort = (app.address() as net.AddressInfo).port;
  const cpDir = join(dir, 'cp');
  cp = await startControlPlaneProcess(cpDir, await writeControlPlaneConfig(cpDir));
  const mesh = await TestCa.create({ trustDomain: TD });
  await writeSvidFiles(mesh, API, join(dir, 'api'));
  const web = await TestCa.create({ trustDomain: 'web.test', rootName: 'CN=Public Web CA, O=Test' });
  const cert = await web.mintSvid('spiffe://web.test/a', { dnsSans: ['a.example.test'] });
  await writeFile(join(dir, 'edge.pem'), cert.chainPem);
  await writeFile(join(dir, 'edge.key'), cert.keyPem, { mode: 0o600 });
  await writeFile(join(dir, 'web.token'), await createJoinToken(cp.dataDir, WEB, 600_000), { mode: 0o600 });
  firstInbound = await freePort();
  await writeFile(join(dir, 'api.yaml'), `identity:\n  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }\n${listeners({ 'inbound/app': firstInbound })}`);
  first = await startProxyProcess(join(dir, 'api.yaml'), 30_000);
}, 90_000);

afterAll(async () => {
  await first?.stop();
  await cp?.stop();
  app?.close();
  await cleanup?.();
});

describe('a `workers: 2` proxy on a port another process listens on with SO_REUSEPORT', () => {
  test('held by another `workers: 2` proxy, then by a Node server with reusePort: every kind fails the start, the token stays good', async () => {
    // Both of the first proxy's workers listen on each of its ports (one reuseport group per port).
    for (const kind of KINDS) await expectRefused(kind, first!.ports.get(kind)!);

    const holder = net.createServer((s) => s.destroy());
    await new Promise<void>((resolve, reject) => {
      holder.once('error', reject);
      holder.listen({ port: 0, host: '127.0.0.1', reusePort: true }, resolve);
    });
    try {
      const held = (holder.address() as net.AddressInfo).port;
      for (const kind of KINDS) await expectRefused(kind, held);
    } finally {
      await new Promise<void>((r) => holder.close(() => r()));
    }
    expect(await attestations()).toBe(0);

    // The holders gone: the same token, on the port the first proxy held, makes the second proxy ready.
    expect(await first!.stop()).toBe(0);
    first = undefined;
    await writeSecond({ 'inbound/app': firstInbound });
    const second = await startProxyProcess(join(dir, 'web.yaml'), 30_000);
    try {
      expect(second.stderr()).not.toContain('TESSERA_ERR_ATTESTATION_TOKEN_USED');
      expect(second.ports.get('inbound/app')).toBe(firstInbound);
      for (const kind of KINDS.slice(1)) expect(second.ports.get(kind)).toBeGreaterThan(0);
      expect(await attestations()).toBe(1);
    } finally {
      expect(await second.stop()).toBe(0);
    }
  }, 180_000);
});
