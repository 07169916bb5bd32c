// An offline root on Kubernetes: a Secret in the plug-in CA shape (root-cert.pem, ca-cert.pem, ca-key.pem,
// cert-chain.pem — made entirely by the openssl CLI where the root lives) bind-mounted READ-ONLY as the kubelet
// does. The control plane signs with that intermediate (it mints none, writes nothing there, holds no root key),
// and its SVIDs verify to the root; a Secret for another trust domain stops the start with one coded line.
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { adminSocketPath } from '../../control-plane/src/admin/admin-client.js';
import { decodePem } from '../../common/pki/pem.js';
import { type RunningControlPlane, TD, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { sumSeries } from '../helpers/prom-metrics.js';
import { makeTempDir, run, tessera } from '../helpers/run.js';
import { type SecretMount, canMount, mountSecret } from '../helpers/secret-mount.js';

const MOUNTABLE = canMount();

let dir: string;
let cleanup: () => Promise<void>;
let holder: string;
const mounts: SecretMount[] = [];
const running: RunningControlPlane[] = [];

async function openssl(args: string[]): Promise<void> {
  const r = await run('openssl', args, { cwd: holder });
  expect(r.code, `openssl ${args.join(' ')}: ${r.stderr}`).toBe(0);
}

/** The Secret's files, as `kubectl create secret generic cacerts --from-file=…` takes them. */
async function cacerts(td: string): Promise<Record<string, Buffer>> {
  await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${td}-ca-key.pem`, '-subj', `/O=Example/CN=Cluster intermediate ${td}`, '-out', `${td}.csr`]);
  await writeFile(join(holder, `${td}.ext`), ['basicConstraints = critical, CA:TRUE, pathlen:0', 'keyUsage = critical, keyCertSign, cRLSign', `subjectAltName = URI:spiffe://${td}`, 'subjectKeyIdentifier = hash', 'authorityKeyIdentifier = keyid:always', ''].join('\n'));
  await openssl(['x509', '-req', '-in', `${td}.csr`, '-CA', 'root.pem', '-CAkey', 'root.key', '-days', '30', '-extfile', `${td}.ext`, '-out', `${td}-ca-cert.pem`]);
  const cert = await readFile(join(holder, `${td}-ca-cert.pem`));
  const root = await readFile(join(holder, 'root.pem'));
  return { 'root-cert.pem': root, 'ca-cert.pem': cert, 'ca-key.pem': await readFile(join(holder, `${td}-ca-key.pem`)), 'cert-chain.pem': Buffer.concat([cert, root]) };
}

async function replica(name: string, files: Record<string, Buffer>): Promise<{ d: string; cfg: string }> {
  const d = join(dir, name);
  await mkdir(join(d, 'data'), { recursive: true, mode: 0o700 });
  mounts.push(await mountSecret(join(d, 'secret'), join(d, 'data', 'ca'), files, { mode: 0o400 }));
  return { d, cfg: await writeControlPlaneConfig(d, 'ca: { root: offline }') };
}

beforeAll(async () => {
  if (!MOUNTABLE) return;
  ({ dir, cleanup } = await makeTempDir());
  holder = join(dir, 'root-holder');
  await mkdir(holder, { mode: 0o700 });
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'root.key', '-out', 'root.pem', '-days', '3650', '-subj', '/O=Example/CN=Example Offline Root', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
}, 60_000);

afterAll(async () => {
  for (const c of running) await c.stop();
  for (const m of mounts) await m.unmount();
  await cleanup?.();
});

describe.skipIf(!MOUNTABLE)('a plug-in CA Secret with an offline root', () => {
  test('signs with the Secret intermediate (none minted, nothing written); SVIDs verify to the root; authority changes are refused', async () => {
    const files = await cacerts(TD);
    const r = await replica('ok', files);
    const cp = await startControlPlaneProcess(r.d, r.cfg);
    running.push(cp);
    const token = (await tessera(['token', 'create', '--data-dir', cp.dataDir, '--spiffe-id', `spiffe://${TD}/ns/default/sa/probe`])).stdout.trim();
    const out = join(r.d, 'fetched');
    // This root names no trust domain (a company root): the workload says which one it joins.
    const fetched = await tessera(['svid', 'fetch', '--control-plane', cp.grpc, '--bundle', join(cp.dataDir, 'bundle.pem'), '--join-token', token, '--out', out, '--trust-domain', TD]);
    expect(fetched.code, fetched.stderr).toBe(0);
    const verify = await run('openssl', ['verify', '-CAfile', join(holder, 'root.pem'), '-untrusted', join(out, 'svid.pem'), join(out, 'svid.pem')]);
    expect(verify.stdout, verify.stderr).toContain(': OK');
    // The chain's intermediate is the Secret's own.
    expect(decodePem(await readFile(join(out, 'svid.pem'), 'utf8'))[1]!.der).toEqual(decodePem(files['ca-cert.pem']!.toString())[0]!.der);
    const status = JSON.parse((await tessera(['ca', 'status', '--data-dir', cp.dataDir, '--json'])).stdout);
    expect(status.authorities).toEqual([expect.objectContaining({ state: 'active', root: 'offline' })]);
    expect(sumSeries(await (await fetch(`http://${cp.admin}/metrics`)).text(), 'tessera_ca_root_offline')).toBe(1);
    for (const cmd of [['intermediate-csr'], ['prepare']]) expect((await tessera(['ca', ...cmd, '--data-dir', cp.dataDir])).stderr).toMatch(/TESSERA_ERR_CA_(READ_ONLY|ROOT_OFFLINE)/);
    const audit = await readFile(join(cp.dataDir, 'audit.log'), 'utf8');
    expect(audit).not.toContain('ca.intermediate_rotated');
    expect(audit).not.toContain('PRIVATE KEY');
    expect(await cp.stop()).toBe(0);
  }, 60_000);

  test('a Secret whose intermediate names another trust domain stops the start: one coded line naming the directory, nothing serving', async () => {
    const r = await replica('other-td', await cacerts('other.org'));
    const res = await tessera(['control-plane', '--config', r.cfg], { timeoutMs: 30_000 });
    expect(res.code).toBe(1);
    expect(res.stdout).not.toMatch(/grpc|ready/);
    expect(existsSync(adminSocketPath(join(r.d, 'data')))).toBe(false);
    const lines = res.stderr.split('\n').filter((l) => l.includes('TESSERA_ERR_'));
    expect(lines, res.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^tessera control-plane: TESSERA_ERR_CA_INTERMEDIATE_WRONG_NAME: ${join(r.d, 'data', 'ca')} \\(root-cert.pem, ca-cert.pem, ca-key.pem\\): .*spiffe://other.org`));
  }, 60_000);
});
