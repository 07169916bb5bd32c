// An offline root end to end, with real processes and the openssl CLI as the root's holder: the root key lives in
// a directory the control plane is never given. A control plane with `ca.root: offline` waits, serving only the CA
// routes; `tessera ca intermediate-csr` → `openssl x509 -req` → `tessera ca install-intermediate` makes it serve;
// SVIDs chain to that root (openssl verify) and proxies speak mTLS; nothing in its data dir is the root key, and no
// key reaches a log. Every bad certificate is refused with its code, audited and counted; a renewal joins the same
// authority; a restart keeps it; SIGTERM while waiting exits 0.
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { decodePem } from '../../common/pki/pem.js';
import type { SupervisedProcess } from '../../shared-io/process-supervisor.js';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { tesseraInProcess } from '../helpers/cli-in-process.js';
import { TD, createJoinToken, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { controlPlaneAddresses, startControlPlaneUntil } from '../helpers/control-plane-supervised.js';
import { sumSeries } from '../helpers/prom-metrics.js';
import { type ProxyProcess, startAttestedProxy } from '../helpers/proxy-process.js';
import { makeTempDir, run, tessera } from '../helpers/run.js';
import { until } from '../helpers/until.js';

const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const EXT = ['basicConstraints = critical, CA:TRUE, pathlen:0', 'keyUsage = critical, keyCertSign, cRLSign', `subjectAltName = URI:spiffe://${TD}`, 'subjectKeyIdentifier = hash', 'authorityKeyIdentifier = keyid:always', ''].join('\n');

let dir: string;
let cleanup: () => Promise<void>;
/** The root holder's directory: openssl works here; the control plane is never told of it. */
let holder: string;
const processes: SupervisedProcess[] = [];

async function openssl(args: string[], cwd = holder): Promise<void> {
  const r = await run('openssl', args, { cwd });
  expect(r.code, `openssl ${args.join(' ')}: ${r.stderr}`).toBe(0);
}

/** The root holder signs `csr` (a path) with `root`; `ext` and `days` vary per bad case. */
async function sign(csr: string, out: string, o: { ext?: string; days?: number; root?: string } = {}): Promise<string> {
  const extFile = join(holder, `${out}.ext`);
  await writeFile(extFile, o.ext ?? EXT);
  const root = o.root ?? 'root';
  await openssl(['x509', '-req', '-in', csr, '-CA', `${root}.pem`, '-CAkey', `${root}.key`, '-days', String(o.days ?? 30), '-extfile', extFile, '-out', `${out}.pem`]);
  return join(holder, `${out}.pem`);
}

/** `openssl ca` can date a certificate ahead (openssl x509 -req cannot, in OpenSSL 3.0). */
async function signAhead(csr: string, out: string): Promise<string> {
  const db = join(holder, 'ca-db');
  await mkdir(join(db, 'new'), { recursive: true });
  await writeFile(join(db, 'index.txt'), '');
  await writeFile(join(db, 'serial'), '1000\n');
  await writeFile(join(db, 'ca.cnf'), `[ca]\ndefault_ca = d\n[d]\ndatabase = ${db}/index.txt\nnew_certs_dir = ${db}/new\nserial = ${db}/serial\ndefault_md = sha256\npolicy = p\nunique_subject = no\n[p]\ncommonName = optional\norganizationName = optional\n`);
  await writeFile(join(holder, 'ahead.ext'), EXT);
  await openssl(['ca', '-batch', '-notext', '-config', join(db, 'ca.cnf'), '-cert', 'root.pem', '-keyfile', 'root.key', '-in', csr, '-out', `${out}.pem`, '-startdate', '20400101000000Z', '-enddate', '20410101000000Z', '-extfile', 'ahead.ext']);
  return join(holder, `${out}.pem`);
}

async function startControlPlane(cfg: string, readyLine: string): Promise<SupervisedProcess> {
  const p = await startControlPlaneUntil(cfg, readyLine);
  processes.push(p);
  return p;
}

const addresses = controlPlaneAddresses;

async function csr(dataDir: string, name: string, newKey = false): Promise<string> {
  const out = join(holder, `${name}.csr`);
  const r = await tessera(['ca', 'intermediate-csr', '--data-dir', dataDir, '--out', out, ...(newKey ? ['--new-key'] : [])]);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).not.toContain('PRIVATE KEY');
  return out;
}

/** `inProcess`: the same command through runCli in this process (tesseraInProcess), for the many refused cases. */
const install = (dataDir: string, cert: string, root = join(holder, 'root.pem'), more: string[] = [], inProcess = false) => {
  const args = ['ca', 'install-intermediate', '--data-dir', dataDir, '--cert', cert, '--root', root, ...more];
  return inProcess ? tesseraInProcess(args) : tessera(args);
};
/** `ca status --json`'s answer from admin.sock (the command itself runs while the control plane waits). */
const caStatus = (dataDir: string) => adminRequest<{ signingAuthority: string; pendingRequest: unknown; authorities: unknown[] }>(dataDir, 'GET', '/v1/ca');

function get(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 5_000 }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** Every file under `d`, recursively. */
function files(d: string): string[] {
  return readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(d, e.name)) : e.isFile() ? [join(d, e.name)] : []));
}

const spki = (k: ReturnType<typeof createPublicKey>) => k.export({ type: 'spki', format: 'der' }).toString('hex');

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  holder = join(dir, 'root-holder');
  await mkdir(holder, { mode: 0o700 });
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'root.key', '-out', 'root.pem', '-days', '3650', '-subj', '/O=Example/CN=Example Offline Root', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-addext', `subjectAltName=URI:spiffe://${TD}`]);
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'evil.key', '-out', 'evil.pem', '-days', '3650', '-subj', '/O=Example/CN=Example Offline Root', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'stranger.key', '-subj', '/CN=stranger', '-out', 'stranger.csr']);
}, 60_000);

afterAll(async () => {
  for (const p of processes) await p.stop({ graceMs: 10_000 });
  await cleanup?.();
});

describe('an offline root', () => {
  test('waits, then serves with an installed intermediate: SVIDs chain to the root it never read, proxies speak mTLS, no root key and no key in a log; bad certificates are refused, audited, counted; renewal and restart', async () => {
    const d = join(dir, 'cp');
    const cfg = await writeControlPlaneConfig(d, 'ca: { root: offline }');
    await writeFile(join(d, 'policies', 'api.yaml'), `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow-web }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: [${WEB}]\n`);
    const dataDir = join(d, 'data');
    const cp = await startControlPlane(cfg, 'no intermediate is installed: waiting');

    // Waiting: only the CA routes answer; nothing is issued, no root is made.
    const status = await tessera(['ca', 'status', '--data-dir', dataDir, '--json']);
    expect(JSON.parse(status.stdout)).toMatchObject({ waiting: true, authorities: [], signingAuthority: null });
    expect((await tessera(['token', 'create', '--data-dir', dataDir, '--spiffe-id', WEB])).stderr).toContain('TESSERA_ERR_CA_NO_INTERMEDIATE');
    expect((await tessera(['ca', 'prepare', '--data-dir', dataDir])).stderr).toContain('TESSERA_ERR_CA_ROOT_OFFLINE');
    expect(existsSync(join(dataDir, 'bundle.pem'))).toBe(false);

    const first = await csr(dataDir, 'first');
    const text = await run('openssl', ['req', '-in', first, '-noout', '-text', '-verify']);
    expect(text.stdout).toContain(`URI:spiffe://${TD}`);
    expect(text.stdout).toContain('prime256v1');
    const installed = await install(dataDir, await sign(first, 'first'));
    expect(installed.code, installed.stderr).toBe(0);
    expect(installed.stdout).toMatch(/installed intermediate [0-9a-f]+ .* in new active authority [0-9a-f]{8} \(offline root\)/);
    expect(installed.stdout).toContain('root: offline');
    await until('the control plane is ready', () => cp.stdout().includes('tessera control-plane: ready'), 30_000);
    const { grpc, admin } = addresses(cp);
    const running = { dataDir, grpc };
    expect(decodePem(await readFile(join(dataDir, 'bundle.pem'), 'utf8'))[0]!.der).toEqual(decodePem(await readFile(join(holder, 'root.pem'), 'utf8'))[0]!.der);

    // A workload's SVID verifies to the root alone; two proxies talk mTLS through it.
    const token = await createJoinToken(dataDir, WEB);
    const fetched = await tessera(['svid', 'fetch', '--control-plane', grpc, '--bundle', join(dataDir, 'bundle.pem'), '--join-token', token, '--out', join(d, 'svid')]);
    expect(fetched.code, fetched.stderr).toBe(0);
    const verify = await run('openssl', ['verify', '-CAfile', join(holder, 'root.pem'), '-untrusted', join(d, 'svid', 'svid.pem'), join(d, 'svid', 'svid.pem')]);
    expect(verify.stdout, verify.stderr).toContain(': OK');
    const app = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    const proxies: ProxyProcess[] = [];
    try {
      const api = await startAttestedProxy(running, d, 'api', API, `inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${(app.address() as AddressInfo).port} }\n`);
      proxies.push(api);
      const web = await startAttestedProxy(running, d, 'web', WEB, `outbound:\n  - { name: api, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/app')}, spiffeId: ${API} }\n`);
      proxies.push(web);
      expect(await get(web.ports.get('outbound/api')!)).toBe(200);

      // Bad certificates for the pending request: each refused with its code, audited and counted. The first through
      // the binary, the others in-process (the command's own code and output, without a node start each).
      const pending = await csr(dataDir, 'renewal', true);
      const bad: [string, () => Promise<{ cert: string; root?: string }>, string, string][] = [
        ['a certificate for another key', async () => ({ cert: await sign(join(holder, 'stranger.csr'), 'stranger') }), 'TESSERA_ERR_CA_INTERMEDIATE_KEY_MISMATCH', 'key_mismatch'],
        ['signed by another root of the same name', async () => ({ cert: await sign(pending, 'evil-signed', { root: 'evil' }) }), 'TESSERA_ERR_CA_INTERMEDIATE_NOT_SIGNED', 'not_signed_by_root'],
        ['an upstream naming another trust domain', async () => ({ cert: await sign(pending, 'other-name', { ext: EXT.replace(`spiffe://${TD}`, 'spiffe://other.org') }) }), 'TESSERA_ERR_CA_INTERMEDIATE_WRONG_NAME', 'wrong_name'],
        ['not a CA', async () => ({ cert: await sign(pending, 'not-ca', { ext: EXT.replace('CA:TRUE, pathlen:0', 'CA:FALSE') }) }), 'TESSERA_ERR_CA_INTERMEDIATE_NOT_CA', 'not_ca'],
        ['expired', async () => ({ cert: await sign(pending, 'expired', { days: -1 }) }), 'TESSERA_ERR_CA_INTERMEDIATE_EXPIRED', 'expired'],
        ['not valid before 2040', async () => ({ cert: await signAhead(pending, 'ahead') }), 'TESSERA_ERR_CA_INTERMEDIATE_NOT_YET_VALID', 'not_yet_valid'],
        ['the intermediate given as the root', async () => ({ cert: join(holder, 'first.pem'), root: join(holder, 'first.pem') }), 'TESSERA_ERR_CA_ROOT_INVALID', 'root_invalid'],
        ['the CSR given as the certificate', async () => ({ cert: pending }), 'TESSERA_ERR_CA_INTERMEDIATE_MALFORMED', 'malformed'],
      ];
      for (const [i, [what, make, code, reason]] of bad.entries()) {
        const { cert, root } = await make();
        const r = await install(dataDir, cert, root, [], i > 0);
        expect(r.code, what).toBe(1);
        expect(r.stderr, what).toContain(`tessera ca install-intermediate: ${code}: `);
        const audited = (await readFile(join(dataDir, 'audit.log'), 'utf8')).split('\n').filter((l) => l.includes('"ca.intermediate_refused"') && l.includes(`"${code}"`));
        expect(audited, what).toHaveLength(1);
        expect(JSON.parse(audited[0]!)).toMatchObject({ result: 'refused', reason, caller: 'admin.sock' });
        expect(sumSeries(await (await fetch(`http://${admin}/metrics`)).text(), 'tessera_ca_intermediate_installs_total', { result: 'refused', reason }), what).toBe(1);
      }
      const before = await caStatus(dataDir);
      expect(before.pendingRequest).not.toBeNull();

      // The renewal, signed with `tessera ca sign-intermediate` this time: same root, same authority, a new signer;
      // proxies keep working.
      const signed = await tessera(['ca', 'sign-intermediate', '--root-cert', join(holder, 'root.pem'), '--root-key', join(holder, 'root.key'), '--csr', pending, '--out', join(holder, 'renewal.pem'), '--ttl', '240h', '--trust-domain', TD]);
      expect(signed.code, signed.stderr).toBe(0);
      expect(signed.stdout).toMatch(new RegExp(`wrote .*renewal.pem: intermediate for spiffe://${TD.replace('.', '\\.')}, serial [0-9a-f]+, not after `));
      const renewed = await install(dataDir, join(holder, 'renewal.pem'), join(holder, 'root.pem'), ['--json']);
      expect(renewed.code, renewed.stderr).toBe(0);
      const r = JSON.parse(renewed.stdout);
      expect(r).toMatchObject({ authority: before.signingAuthority, newAuthority: false, state: 'active' });
      expect(r.status.authorities).toEqual([expect.objectContaining({ id: before.signingAuthority, root: 'offline', intermediateSerial: r.serial })]);
      expect(r.status.pendingRequest).toBeNull();
      expect((await install(dataDir, join(holder, 'renewal.pem'))).stderr).toContain('TESSERA_ERR_CA_NO_PENDING_REQUEST');
      expect(await get(web.ports.get('outbound/api')!)).toBe(200);
      const metrics = await (await fetch(`http://${admin}/metrics`)).text();
      expect(sumSeries(metrics, 'tessera_ca_intermediate_installs_total', { result: 'installed' })).toBe(2);
      expect(sumSeries(metrics, 'tessera_ca_root_offline', { authority: before.signingAuthority })).toBe(1);
    } finally {
      for (const p of proxies) await p.stop();
      app.close();
    }

    // The data dir holds no key of the root: not as PEM, not as DER (the SQLite file included), not the public half.
    const rootKeyPem = await readFile(join(holder, 'root.key'), 'utf8');
    const rootDer = createPrivateKey(rootKeyPem).export({ type: 'pkcs8', format: 'der' });
    const rootSpki = spki(createPublicKey(rootKeyPem));
    const rootBody = rootKeyPem.split('\n').slice(1, 3).join('');
    const intKeys: string[] = [];
    for (const f of files(dataDir).filter((p) => statSync(p).size < 64 << 20)) {
      const bytes = readFileSync(f);
      expect(bytes.includes(rootDer), f).toBe(false);
      expect(bytes.toString('latin1').includes(rootBody), f).toBe(false);
      for (const b of decodePem(bytes.toString('latin1')).filter((x) => x.label.includes('PRIVATE KEY'))) {
        expect(spki(createPublicKey(createPrivateKey({ key: b.der, format: 'der', type: 'pkcs8' }))), f).not.toBe(rootSpki);
        if (f.includes('-int-')) intKeys.push(bytes.toString('utf8').split('\n').slice(1, 3).join(''));
      }
    }
    expect(intKeys.length).toBeGreaterThanOrEqual(1);
    // No key in a log: the control plane's output and its audit log.
    const logs = [cp.stdout(), cp.stderr(), await readFile(join(dataDir, 'audit.log'), 'utf8')].join('\n');
    expect(logs).not.toContain('PRIVATE KEY');
    for (const k of [rootBody, ...intKeys]) expect(logs).not.toContain(k);

    // A restart loads the offline authority as it is: ready at once, still offline.
    expect(await cp.stop({ graceMs: 15_000 })).toBe(0);
    const again = await startControlPlane(cfg, 'tessera control-plane: ready');
    const after = await caStatus(dataDir);
    expect(after.authorities).toEqual([expect.objectContaining({ root: 'offline', state: 'active' })]);
    expect(await again.stop({ graceMs: 15_000 })).toBe(0);
  }, 240_000);

  test('tessera ca sign-intermediate refuses a CSR that is not for a bare trust-domain ID, another trust domain, a key that is not the root\'s, a root install-intermediate would refuse, and a root key others can read', async () => {
    const args = (csr: string, key = 'root.key', more: string[] = [], root = 'root.pem') => ['ca', 'sign-intermediate', '--root-cert', join(holder, root), '--root-key', join(holder, key), '--csr', join(holder, csr), '--out', join(holder, 'refused.pem'), ...more];
    // Roots of the root key that install-intermediate refuses (each for its own reason), and that key readable by all.
    const rootWith = (out: string, ...ext: string[]) => openssl(['req', '-x509', '-new', '-key', 'root.key', '-out', out, '-days', '30', '-subj', '/O=Example/CN=Example Offline Root', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', ...ext.flatMap((e) => ['-addext', e])]);
    await rootWith('root-pathlen0.pem', 'basicConstraints=critical,CA:TRUE,pathlen:0');
    await rootWith('root-other.pem', 'basicConstraints=critical,CA:TRUE', 'subjectAltName=URI:spiffe://other.org');
    await rootWith('root-codesigning.pem', 'basicConstraints=critical,CA:TRUE', 'extendedKeyUsage=codeSigning');
    await copyFile(join(holder, 'root.key'), join(holder, 'open.key'));
    await chmod(join(holder, 'open.key'), 0o644);
    // Group access too: a root key is owner-only even for the holder's own group (no Secret mount here).
    await copyFile(join(holder, 'root.key'), join(holder, 'group.key'));
    await chmod(join(holder, 'group.key'), 0o640);
    await openssl(['req', '-new', '-key', 'stranger.key', '-subj', '/CN=x', '-addext', `subjectAltName=URI:spiffe://${TD}/ns/default/sa/web`, '-out', 'workload.csr']);
    await openssl(['req', '-new', '-key', 'stranger.key', '-subj', '/CN=x', '-addext', `subjectAltName=URI:spiffe://${TD}`, '-out', 'td.csr']);
    for (const [what, a, text] of [
      ['a CSR without a SAN', args('stranger.csr'), 'an intermediate request names exactly spiffe://<trust domain>'],
      ['a CSR for a workload ID', args('workload.csr'), 'an intermediate request names exactly spiffe://<trust domain>'],
      ['another trust domain than asked', args('td.csr', 'root.key', ['--trust-domain', 'other.org']), `the CSR is for trust domain ${TD}, not other.org`],
      ['a key that is not the root\'s', args('td.csr', 'evil.key'), 'is not the key of --root-cert'],
      ['a root with pathlen 0', args('td.csr', 'root.key', [], 'root-pathlen0.pem'), 'TESSERA_ERR_CA_ROOT_INVALID'],
      ['a root naming another trust domain', args('td.csr', 'root.key', [], 'root-other.pem'), 'TESSERA_ERR_CA_INTERMEDIATE_WRONG_NAME'],
      ['a root for code signing only', args('td.csr', 'root.key', [], 'root-codesigning.pem'), 'TESSERA_ERR_CA_INTERMEDIATE_BAD_EKU'],
      ['a root key every user can read', args('td.csr', 'open.key'), 'TESSERA_ERR_CA_KEY_EXPOSED'],
      ['a root key its group can read', args('td.csr', 'group.key'), 'TESSERA_ERR_CA_KEY_EXPOSED'],
    ] as const) {
      // The first through the binary, the others in-process (tesseraInProcess: the command's code without a node start).
      const r = what === 'a CSR without a SAN' ? await tessera(a) : await tesseraInProcess(a);
      expect(r.code, what).not.toBe(0);
      expect(r.stderr, what).toContain(text);
    }
    expect(existsSync(join(holder, 'refused.pem'))).toBe(false);
  }, 60_000);

  test('SIGTERM while it waits for its first intermediate: exit 0, no socket left', async () => {
    const d = join(dir, 'waiting');
    const cfg = await writeControlPlaneConfig(d, 'ca: { root: offline }');
    const cp = await startControlPlane(cfg, 'no intermediate is installed: waiting');
    expect(await cp.stop({ graceMs: 10_000 })).toBe(0);
    expect(cp.stdout()).not.toContain('ready');
    expect(existsSync(join(d, 'data', 'admin.sock'))).toBe(false);
    expect(readdirSync(join(d, 'data', 'ca')).filter((n) => n.endsWith('.key'))).toEqual([]);
  }, 60_000);
});
