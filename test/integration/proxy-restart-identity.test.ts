// Restarting a join-token sidecar (audit 52a F2 and F3), with a real control plane and real `tessera proxy`
// processes. With identity.controlPlane.stateDir the proxy keeps its SVID and key (0600 in a 0700 dir) and a restart
// with its spent token file is ready at once, serves, and renews from the kept SVID (the control plane's audit shows
// the lineage). A kept SVID whose serial was banned meanwhile is dropped when the control plane refuses to renew it:
// the spent token leaves the proxy not ready with the coded error (its ports reset every connection: no plaintext
// answered), a fresh one makes it ready; a corrupt state file, or one in a dir its group can write (the proxy user's
// own group included), is a coded error and attestation follows. A start whose inbound, outbound or admin port cannot
// be bound (one process, or listener workers) fails before it attests: the token is still good for the next start.
import { X509Certificate } from 'node:crypto';
import { chmod, chown, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import * as net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { createJoinToken, type RunningControlPlane, startControlPlaneProcess, TD, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { freeLowPorts } from '../helpers/free-port.js';
import { type ProxyProcess, startAttestedProxy, startProxyProcess } from '../helpers/proxy-process.js';
import { startTestProcess } from '../helpers/ready-process.js';
import { makeTempDir, run, TESSERA_BIN, tessera } from '../helpers/run.js';
import { until } from '../helpers/until.js';

const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;

let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane;
let app: ReturnType<typeof createServer>;
let web: ProxyProcess;
let apiIn: number;
let apiAdmin: number;
const apiConfig = () => join(dir, 'api.yaml');
const stateFile = () => join(dir, 'api-state', 'svid.key.pem');

/** api's sidecar as getting-started §2 sets it up, with a state dir; `mtls` as permissive-to-strict §1 changes it. */
async function writeApiConfig(mtls: 'strict' | 'permissive'): Promise<void> {
  await writeFile(
    apiConfig(),
    [
      'identity:',
      `  controlPlane: { address: ${cp.grpc}, bundleFile: ${join(cp.dataDir, 'bundle.pem')}, joinTokenFile: ./api.token, stateDir: ./api-state }`,
      'inbound:',
      `  - { name: app, listen: 127.0.0.1:${apiIn}, forwardTo: 127.0.0.1:${(app.address() as net.AddressInfo).port}, protocol: http, mtls: ${mtls} }`,
      `admin: { listen: 127.0.0.1:${apiAdmin} }`,
      'telemetry: { accessLog: off }',
      '',
    ].join('\n'),
  );
}

const writeToken = async (name: string, id: string) => writeFile(join(dir, `${name}.token`), await createJoinToken(cp.dataDir, id, 600_000), { mode: 0o600 });

/** web → api over mTLS through web's outbound listener: the status. */
function call(): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: web.ports.get('outbound/api')!, path: '/x', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A plaintext request with curl to api's (permissive) inbound port: the HTTP status curl saw ("000": none) and its exit code. */
async function plaintext(): Promise<{ status: string; code: number }> {
  const r = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', `http://127.0.0.1:${apiIn}/x`]);
  return { status: r.stdout, code: r.code };
}

async function ready(admin: number): Promise<{ status: number; reason?: string }> {
  const res = await fetch(`http://127.0.0.1:${admin}/ready`).catch(() => undefined);
  if (!res) return { status: 0 };
  return { status: res.status, ...((await res.json()) as { reason?: string }) };
}

const certsSerial = async (admin: number) => ((await (await fetch(`http://127.0.0.1:${admin}/certs`)).json()) as { serial: string }).serial;
const keptSerial = async () => new X509Certificate(await readFile(stateFile())).serialNumber.toLowerCase();

/** The control plane's svid.issued audit lines for `id`. */
async function issued(id: string): Promise<{ serial: string; attestedAs: string }[]> {
  const lines = (await readFile(join(cp.dataDir, 'audit.log'), 'utf8')).trim().split('\n');
  return lines.map((l) => JSON.parse(l) as { event: string; spiffeId: string; serial: string; attestedAs: string }).filter((e) => e.event === 'svid.issued' && e.spiffeId === id);
}
const attestations = async (id: string) => (await issued(id)).filter((e) => e.attestedAs.startsWith('join_token:')).length;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  app = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const cpDir = join(dir, 'cp');
  const cfg = await writeControlPlaneConfig(cpDir, 'svid: { ttl: 20s, backdate: 5s }');
  await writeFile(
    join(cpDir, 'policies', 'api.yaml'),
    `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow-web }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: [${WEB}]\n`,
  );
  cp = await startControlPlaneProcess(cpDir, cfg);
  [apiIn, apiAdmin] = await freeLowPorts(2).then((p) => [p, p + 1]);
  await writeApiConfig('strict');
  web = await startAttestedProxy(cp, dir, 'web', WEB, `outbound:\n  - { name: api, listen: 127.0.0.1:0, upstream: 127.0.0.1:${apiIn}, spiffeId: ${API} }\n`);
}, 90_000);

afterAll(async () => {
  await web?.stop();
  await cp?.stop();
  app?.close();
  await cleanup?.();
});

describe('a join-token sidecar with identity.controlPlane.stateDir', () => {
  test('restarted with its spent token file: ready at once, serving, and renewing from the kept SVID', async () => {
    await writeToken('api', API);
    const first = await startProxyProcess(apiConfig(), 30_000);
    try {
      // Written after the install, off its path: awaited here.
      await until('the state file holds the served SVID', async () => (await keptSerial().catch(() => '')) === (await certsSerial(first.admin)), 10_000);
      // The key is at rest owner-only, in a dir only its owner may list.
      expect((await stat(join(dir, 'api-state'))).mode & 0o777).toBe(0o700);
      expect((await stat(stateFile())).mode & 0o777).toBe(0o600);
      expect(await call()).toBe(200);
      // A second proxy given the same state dir (its own ports) is refused before it attests: it would restore api's
      // SVID and fork its renewals.
      await writeFile(join(dir, 'twin.yaml'), (await readFile(apiConfig(), 'utf8')).replace(`listen: 127.0.0.1:${apiIn}`, 'listen: 127.0.0.1:0').replace(`listen: 127.0.0.1:${apiAdmin}`, 'listen: 127.0.0.1:0'));
      const twin = await tessera(['proxy', '--config', join(dir, 'twin.yaml')], { timeoutMs: 30_000 });
      expect(twin.code, twin.stderr).toBe(1);
      expect(twin.stderr).toContain('TESSERA_ERR_IDENTITY_STATE_IN_USE');
      expect(twin.stderr).toContain(join(dir, 'api-state', 'proxy.lock'));
      expect(await call()).toBe(200);
    } finally {
      expect(await first.stop()).toBe(0);
    }
    const kept = await keptSerial();
    expect(await attestations(API)).toBe(1);

    // permissive-to-strict §1: change the listener, restart the proxy (the token in api.token is spent).
    await writeApiConfig('permissive');
    const second = await startProxyProcess(apiConfig(), 30_000);
    try {
      expect(second.stderr()).toContain('SVID restored from the state dir');
      expect(second.stderr()).not.toContain('TESSERA_ERR_ATTESTATION_TOKEN_USED');
      expect(await attestations(API)).toBe(1);
      expect(await call()).toBe(200);
      expect(await plaintext()).toEqual({ status: '403', code: 0 });
      // Renewed over mTLS from the kept SVID: the lineage goes on at the control plane.
      await until('api renewed the kept SVID', async () => (await certsSerial(second.admin)) !== kept, 25_000);
      const renewed = await certsSerial(second.admin);
      expect(await issued(API)).toContainEqual(expect.objectContaining({ serial: renewed, attestedAs: `x509svid:${kept}` }));
      await until('the renewed SVID is kept', async () => (await keptSerial()) === renewed, 10_000);
      expect((await stat(stateFile())).mode & 0o777).toBe(0o600);
      expect(await call()).toBe(200);
    } finally {
      expect(await second.stop()).toBe(0);
    }
  }, 90_000);

  test('the kept SVID banned meanwhile: dropped; the spent token leaves it not ready (coded, ports resetting), a fresh one makes it ready', async () => {
    const kept = await keptSerial();
    await adminRequest(cp.dataDir, 'POST', '/v1/revocations', { kind: 'serial', value: kept, reason: 'test: key left with a laptop', createdBy: 'test' });
    const before = await attestations(API);
    const p = await startTestProcess({ name: 'api-banned', command: process.execPath, args: [TESSERA_BIN, 'proxy', '--config', apiConfig()] });
    try {
      await until('not ready with the coded error of the spent token', async () => (await ready(apiAdmin)).reason?.includes('TESSERA_ERR_ATTESTATION_TOKEN_USED') === true, 20_000);
      expect((await ready(apiAdmin)).status).toBe(503);
      expect(p.stderr()).toContain('the control plane refused to renew the restored SVID');
      expect(p.stderr()).toContain('TESSERA_ERR_REVOCATION_SERIAL_BANNED');
      // Not ready, so nothing is served on its port: no plaintext answer (a reset), and web's call fails.
      const plain = await plaintext();
      expect(plain.status).toBe('000');
      expect(plain.code).not.toBe(0);
      expect(await call()).toBe(502);

      await writeToken('api', API);
      await until('ready with the fresh token', async () => (await ready(apiAdmin)).status === 200, 30_000);
      expect(await attestations(API)).toBe(before + 1);
      await until('the attested SVID is kept', async () => (await keptSerial()) !== kept, 10_000);
      expect(await call()).toBe(200);
    } finally {
      expect(await p.stop({ graceMs: 15_000 })).toBe(0);
    }
  }, 90_000);

  test('a corrupt state file is a coded error in the log, and the proxy attests instead (no crash)', async () => {
    const whole = await readFile(stateFile(), 'utf8');
    await writeFile(stateFile(), whole.slice(0, Math.floor(whole.length / 2)), { mode: 0o600 });
    await writeToken('api', API);
    const before = await attestations(API);
    const p = await startProxyProcess(apiConfig(), 30_000);
    try {
      expect(p.stderr()).toContain('TESSERA_ERR_IDENTITY_STATE_INVALID');
      expect(p.stderr()).not.toContain('SVID restored');
      expect(await attestations(API)).toBe(before + 1);
      await until('the state file is whole again', async () => (await keptSerial().catch(() => '')) === (await certsSerial(p.admin)), 10_000);
      expect((await stat(stateFile())).mode & 0o777).toBe(0o600);
      expect(await call()).toBe(200);
      // The key is never in the log.
      expect(p.stderr()).not.toContain('PRIVATE KEY');
    } finally {
      expect(await p.stop()).toBe(0);
    }
  }, 60_000);

  test('a state dir its own group can write (its gid: 0 under root, as in every OpenShift container): the kept SVID is not trusted, the dir not narrowed (audit 56c F3)', async () => {
    const stateDir = join(dir, 'api-state');
    await chown(stateDir, process.getuid!(), process.getgid!());
    await chmod(stateDir, 0o770);
    await writeToken('api', API);
    const before = await attestations(API);
    const p = await startProxyProcess(apiConfig(), 30_000);
    try {
      expect(p.stderr()).toContain('TESSERA_ERR_IDENTITY_STATE_INVALID');
      expect(p.stderr()).toMatch(/is writable by group \d+ \(mode 0770\), whose other members, though this process is in it, are other users/);
      expect(p.stderr()).not.toContain('SVID restored');
      expect(await attestations(API)).toBe(before + 1);
      await until('the refused write is logged', () => p.stderr().includes('TESSERA_ERR_IDENTITY_STATE_WRITE_FAILED'), 10_000);
      expect((await stat(stateDir)).mode & 0o7777).toBe(0o770);
      expect(await call()).toBe(200);
    } finally {
      expect(await p.stop()).toBe(0);
      await chmod(stateDir, 0o700);
      // The dir still keeps the SVID of the test before (this one's writes were refused), which may expire before the
      // next start of api: a fresh token lets that start attest then, as the spent one could not.
      await writeToken('api', API);
    }
  }, 60_000);
});

describe('a start whose ports cannot be bound (audit 52a F3)', () => {
  test('fails with TESSERA_ERR_PROXY_LISTEN_FAILED before it attests: the token is still good for the next start', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const taken = (blocker.address() as net.AddressInfo).port;
    await writeToken('web2', WEB);
    const appPort = (app.address() as net.AddressInfo).port;
    const config = (inbound: string, outbound: string, admin: string, workers = 1) =>
      writeFile(
        join(dir, 'web2.yaml'),
        `identity:\n  controlPlane: { address: ${cp.grpc}, bundleFile: ${join(cp.dataDir, 'bundle.pem')}, joinTokenFile: ./web2.token }\nworkers: ${workers}\ninbound:\n  - { name: app, listen: ${inbound}, forwardTo: 127.0.0.1:${appPort} }\noutbound:\n  - { name: api, listen: ${outbound}, upstream: 127.0.0.1:${apiIn}, spiffeId: ${API} }\nadmin: { listen: ${admin} }\ntelemetry: { accessLog: off }\n`,
      );
    const any = '127.0.0.1:0';
    const busy = `127.0.0.1:${taken}`;
    try {
      // The inbound port taken, the outbound one (in one process and with listener workers), then the admin port.
      for (const [inbound, outbound, admin, workers, code] of [
        [busy, any, any, 1, 'TESSERA_ERR_PROXY_LISTEN_FAILED'],
        [any, busy, any, 1, 'TESSERA_ERR_PROXY_LISTEN_FAILED'],
        [any, busy, any, 2, 'TESSERA_ERR_PROXY_LISTEN_FAILED'],
        [busy, any, any, 2, 'TESSERA_ERR_PROXY_LISTEN_FAILED'],
        [any, any, busy, 1, 'TESSERA_ERR_ADMIN_LISTEN_FAILED'],
      ] as const) {
        await config(inbound, outbound, admin, workers);
        const r = await tessera(['proxy', '--config', join(dir, 'web2.yaml')], { timeoutMs: 30_000 });
        expect(r.code, r.stderr).toBe(1);
        expect(r.stderr).toContain(code);
        if (code === 'TESSERA_ERR_PROXY_LISTEN_FAILED') expect(r.stderr).toContain('a join token is not spent');
        // The listener and its address as configured are named.
        if (inbound !== any) expect(r.stderr).toContain(`inbound "app" (listen ${inbound})`);
        if (outbound !== any) expect(r.stderr).toContain(`outbound "api" (listen ${outbound})`);
      }
      const before = await attestations(WEB);
      // The same token, ports free (with two listener workers, on the port the primary reserved): ready, and serving
      // (api starts again from its kept SVID, as above).
      await config(any, any, any, 2);
      const p = await startProxyProcess(join(dir, 'web2.yaml'), 30_000);
      const api = await startProxyProcess(apiConfig(), 30_000).catch(async (e: unknown) => {
        await p.stop();
        throw e;
      });
      try {
        expect(p.stderr()).not.toContain('TESSERA_ERR_ATTESTATION_TOKEN_USED');
        expect(await attestations(WEB)).toBe(before + 1);
        const status = await new Promise<number>((resolve, reject) => {
          const req = request({ host: '127.0.0.1', port: p.ports.get('outbound/api')!, path: '/x', agent: false }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode!));
          });
          req.on('error', reject);
          req.end();
        });
        expect(status).toBe(200);
      } finally {
        expect(await p.stop()).toBe(0);
        expect(await api.stop()).toBe(0);
      }
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  }, 120_000);

  test('a listen host that does not resolve: LISTEN_FAILED naming the listener and its address (audit 55a F8)', async () => {
    // It was PROXY_START_FAILED "cannot getaddrinfo: failed (ENOTFOUND)", naming neither listener nor host.
    await writeToken('web3', WEB);
    const appPort = (app.address() as net.AddressInfo).port;
    await writeFile(
      join(dir, 'web3.yaml'),
      `identity:\n  controlPlane: { address: ${cp.grpc}, bundleFile: ${join(cp.dataDir, 'bundle.pem')}, joinTokenFile: ./web3.token }\ninbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort} }\n  - { name: nowhere, listen: nosuchhost.invalid:0, forwardTo: 127.0.0.1:${appPort} }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n`,
    );
    const r = await tessera(['proxy', '--config', join(dir, 'web3.yaml')], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/tessera proxy: TESSERA_ERR_PROXY_LISTEN_FAILED: a listener host does not resolve: inbound "nowhere" \(listen nosuchhost\.invalid:0\) .*(ENOTFOUND|EAI_AGAIN).* \(nothing was attested: a join token is not spent\)/);
  }, 40_000);
});
