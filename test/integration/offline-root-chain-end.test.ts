// Audit 38c F3 with real processes and the openssl CLI as the root's holder: an offline root that expires before
// the intermediate it signed. `tessera ca install-intermediate` refuses such an intermediate (coded, audited,
// counted, the request kept); one signed to end with the root is installed. An intermediate that outlives its root
// left by an older build (its certificate file re-signed in place, as that build would have installed it) is read
// with its chain's end everywhere: `ca status`, /certs, the expiry gauge and the SVIDs it signs stop at the root's
// date, the log warns about the root before it, and once the root expired /ready is 503 naming it.
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import type { SupervisedProcess } from '../../shared-io/process-supervisor.js';
import { joinTokenSvid, TD, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { controlPlaneAddresses, startControlPlaneUntil } from '../helpers/control-plane-supervised.js';
import { sumSeries } from '../helpers/prom-metrics.js';
import { makeTempDir, run, tessera } from '../helpers/run.js';
import { until } from '../helpers/until.js';

const WEB = `spiffe://${TD}/ns/default/sa/web`;
const EXT = ['basicConstraints = critical, CA:TRUE, pathlen:0', 'keyUsage = critical, keyCertSign, cRLSign', `subjectAltName = URI:spiffe://${TD}`, 'subjectKeyIdentifier = hash', 'authorityKeyIdentifier = keyid:always', ''].join('\n');
/**
 * How long the short root lives from its making; the test then waits for its end (the file's wall time). The steps
 * that must come before it (from the root's making to the 200 from /ready, the second test's request and install
 * made in-process) took 8-12 s on a shared 2-core machine at load 6-10 and ~7 s idle, most of it the wait for the
 * first CA pass (every 5 s): 40 s leaves more than three times the worst (CI runs three files at once). The root
 * is past half its life from the start: the control plane warns at its first CA pass.
 */
const SHORT_ROOT_MS = 40_000;

let dir: string;
let cleanup: () => Promise<void>;
let holder: string;
const processes: SupervisedProcess[] = [];

async function openssl(args: string[]): Promise<void> {
  const r = await run('openssl', args, { cwd: holder });
  expect(r.code, `openssl ${args.join(' ')}: ${r.stderr}`).toBe(0);
}

/** openssl's date form (YYYYMMDDHHMMSSZ). */
const asn1 = (ms: number) => `${new Date(ms).toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;

/** `openssl ca` (it takes exact dates and a serial, `x509 -req` does not): `csr` signed by `root` into `out`. */
async function signCa(o: { csr: string; out: string; root: string; startMs: number; endMs: number; serial: string; selfSign?: boolean; ext?: string }): Promise<string> {
  const db = join(holder, `db-${o.out}`);
  await mkdir(db, { recursive: true });
  await writeFile(join(db, 'index.txt'), '');
  await writeFile(join(db, 'serial'), `${o.serial}\n`);
  await writeFile(join(db, 'ca.cnf'), `[ca]\ndefault_ca = d\n[d]\ndatabase = ${db}/index.txt\nnew_certs_dir = ${db}\nserial = ${db}/serial\ndefault_md = sha256\npolicy = p\nunique_subject = no\ncopy_extensions = none\n[p]\ncommonName = optional\norganizationName = optional\n`);
  await writeFile(join(db, 'ext'), o.ext ?? EXT);
  const signer = o.selfSign ? ['-selfsign', '-keyfile', `${o.root}.key`] : ['-cert', `${o.root}.pem`, '-keyfile', `${o.root}.key`];
  await openssl(['ca', '-batch', '-notext', '-config', join(db, 'ca.cnf'), ...signer, '-in', o.csr, '-out', `${o.out}.pem`, '-startdate', asn1(o.startMs), '-enddate', asn1(o.endMs), '-extfile', join(db, 'ext')]);
  return join(holder, `${o.out}.pem`);
}

/** A root valid from ten minutes ago until `endMs` (root.pem, root.key under `name`): a short one is past half its life at once. */
async function shortRoot(name: string, endMs: number): Promise<X509Certificate> {
  await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/O=Example/CN=${name}`]);
  const ext = ['basicConstraints = critical, CA:TRUE', 'keyUsage = critical, keyCertSign, cRLSign', `subjectAltName = URI:spiffe://${TD}`, 'subjectKeyIdentifier = hash', ''].join('\n');
  await signCa({ csr: `${name}.csr`, out: name, root: name, startMs: Date.now() - 600_000, endMs, serial: '0A0A', selfSign: true, ext });
  return new X509Certificate(await readFile(join(holder, `${name}.pem`)));
}

async function startControlPlane(cfg: string, readyLine: string): Promise<SupervisedProcess> {
  const p = await startControlPlaneUntil(cfg, readyLine);
  processes.push(p);
  return p;
}

const addresses = controlPlaneAddresses;

async function csr(dataDir: string, name: string): Promise<string> {
  const out = join(holder, `${name}.csr`);
  const r = await tessera(['ca', 'intermediate-csr', '--data-dir', dataDir, '--out', out]);
  expect(r.code, r.stderr).toBe(0);
  return out;
}

const install = (dataDir: string, cert: string, root: string) => tessera(['ca', 'install-intermediate', '--data-dir', dataDir, '--cert', cert, '--root', join(holder, `${root}.pem`)]);
const status = async (dataDir: string) => JSON.parse((await tessera(['ca', 'status', '--data-dir', dataDir, '--json'])).stdout) as { authorities: Record<string, unknown>[]; pendingRequest: unknown; signingAuthority: string };

async function ready(admin: string): Promise<{ status: number; text: string }> {
  const r = await fetch(`http://${admin}/ready`);
  return { status: r.status, text: await r.text() };
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  holder = join(dir, 'root-holder');
  await mkdir(holder, { mode: 0o700 });
}, 30_000);

afterAll(async () => {
  for (const p of processes) await p.stop({ graceMs: 10_000 });
  await cleanup?.();
});

describe('an offline root that ends before its intermediate', () => {
  test('install refuses an intermediate that outlives its root (coded, audited, counted, the request kept); one that ends with the root is installed', async () => {
    const rootEnd = (await shortRoot('ten-day', Date.now() + 10 * 86_400_000)).validToDate;
    const d = join(dir, 'refuse');
    const dataDir = join(d, 'data');
    const cp = await startControlPlane(await writeControlPlaneConfig(d, 'ca: { root: offline }'), 'no intermediate is installed: waiting');
    const pending = await csr(dataDir, 'refuse');
    // What an upstream that picks its own validity answers: 30 days, from a root with 10 left.
    const long = await signCa({ csr: pending, out: 'thirty-days', root: 'ten-day', startMs: Date.now() - 60_000, endMs: Date.now() + 30 * 86_400_000, serial: '1001' });
    const refused = await install(dataDir, long, 'ten-day');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('tessera ca install-intermediate: TESSERA_ERR_CA_INTERMEDIATE_OUTLIVES_ROOT: ');
    expect(refused.stderr).toContain(rootEnd.toISOString());
    const audited = (await readFile(join(dataDir, 'audit.log'), 'utf8')).split('\n').filter((l) => l.includes('"ca.intermediate_refused"'));
    expect(audited.map((l) => JSON.parse(l))).toEqual([expect.objectContaining({ result: 'refused', code: 'TESSERA_ERR_CA_INTERMEDIATE_OUTLIVES_ROOT', reason: 'outlives_root' })]);
    expect((await status(dataDir)).pendingRequest).not.toBeNull();

    // Signed again to end with the root: installed, and the control plane serves.
    const fits = await signCa({ csr: pending, out: 'to-root-end', root: 'ten-day', startMs: Date.now() - 60_000, endMs: rootEnd.getTime(), serial: '1002' });
    const installed = await install(dataDir, fits, 'ten-day');
    expect(installed.code, installed.stderr).toBe(0);
    await until('the control plane is ready', () => cp.stdout().includes('tessera control-plane: ready'), 30_000);
    const metrics = await (await fetch(`http://${addresses(cp).admin}/metrics`)).text();
    expect(sumSeries(metrics, 'tessera_ca_intermediate_installs_total', { result: 'refused', reason: 'outlives_root' })).toBe(1);
    expect(sumSeries(metrics, 'tessera_ca_intermediate_installs_total', { result: 'installed' })).toBe(1);
    expect(await cp.stop({ graceMs: 15_000 })).toBe(0);
  }, 120_000);

  test("one left by an older build: ca status, /certs, the gauge and new SVIDs end at the root's date; the root is warned about; once it expired /ready is 503", async () => {
    const d = join(dir, 'older');
    const dataDir = join(d, 'data');
    const cfg = await writeControlPlaneConfig(d, 'ca: { root: offline }');
    // The intermediate's key and request first: the short root's clock starts after them.
    const first = await startControlPlane(cfg, 'no intermediate is installed: waiting');
    // The request and the install over admin.sock, as the CLI makes them (the first test runs the commands): no CLI
    // start between the short root's making and its checks.
    const pending = join(holder, 'older.csr');
    await writeFile(pending, (await adminRequest<{ csrPem: string }>(dataDir, 'POST', '/v1/ca/intermediate-csr', { newKey: false })).csrPem);
    const root = await shortRoot('short', Date.now() + SHORT_ROOT_MS);
    const rootEnd = root.validToDate.getTime();
    // The root holder's answer that ends with the root, installed now; and what a build before the refusal installed:
    // the same key and serial, valid 30 days, put in its place below (ca-state.json says so too).
    const [fits, outliving] = await Promise.all([
      signCa({ csr: pending, out: 'older-fits', root: 'short', startMs: Date.now() - 60_000, endMs: rootEnd, serial: '2A2A' }),
      signCa({ csr: pending, out: 'older-outlives', root: 'short', startMs: Date.now() - 60_000, endMs: Date.now() + 30 * 86_400_000, serial: '2A2A' }),
    ]);
    const body = { certPem: await readFile(fits, 'utf8'), rootPem: await readFile(join(holder, 'short.pem'), 'utf8'), activate: false };
    expect(await adminRequest<{ serial: string }>(dataDir, 'POST', '/v1/ca/install-intermediate', body)).toMatchObject({ serial: expect.any(String) });
    await until('the control plane is ready', () => first.stdout().includes('tessera control-plane: ready'), 30_000);
    expect(await first.stop({ graceMs: 15_000 })).toBe(0);

    const caDir = join(dataDir, 'ca');
    const state = JSON.parse(await readFile(join(caDir, 'ca-state.json'), 'utf8')) as { authorities: { id: string; intermediates: { certFile: string; notAfterMs: number }[] }[] };
    const authority = state.authorities[0]!.id;
    const rec = state.authorities[0]!.intermediates[0]!;
    const cert = await readFile(outliving);
    await writeFile(join(caDir, rec.certFile), cert);
    rec.notAfterMs = new X509Certificate(cert).validToDate.getTime();
    expect(rec.notAfterMs).toBeGreaterThan(rootEnd + 29 * 86_400_000);
    await writeFile(join(caDir, 'ca-state.json'), JSON.stringify(state, null, 2), { mode: 0o600 });

    const cp = await startControlPlane(cfg, 'tessera control-plane: ready');
    const { grpc, admin } = addresses(cp);
    const iso = new Date(rootEnd).toISOString();
    // Read together (each is independent of the others): all of it, up to /ready's 200, comes before the root's end.
    const [s, text, certs, metrics, fetched] = await Promise.all([
      status(dataDir),
      tessera(['ca', 'status', '--data-dir', dataDir]).then((r) => r.stdout),
      fetch(`http://${admin}/certs`).then((r) => r.json()),
      fetch(`http://${admin}/metrics`).then((r) => r.text()),
      // An SVID issued now (svid.ttl 1 h), over SignSvid in-process: what it ends at is the point, not the CLI.
      readFile(join(dataDir, 'bundle.pem'), 'utf8').then((bundlePem) => joinTokenSvid({ grpc, dataDir }, bundlePem, WEB)),
    ]);
    expect(s.authorities).toEqual([expect.objectContaining({ id: authority, root: 'offline', rootNotAfter: iso, intermediateNotAfter: iso, chainEndsWith: 'root' })]);
    expect(text).toContain(`its signing chain ends ${iso}, when its root expires`);
    expect(certs).toMatchObject({ intermediateNotAfter: iso, chainEndsWith: 'root' });
    expect(sumSeries(metrics, 'tessera_ca_expiry_timestamp_seconds', { cert: 'intermediate', state: 'active' })).toBe(rootEnd / 1000);
    // The SVID ends with the root, not an hour later on the intermediate's word.
    expect(new X509Certificate(fetched.chainPem).validToDate.getTime()).toBeLessThanOrEqual(rootEnd);

    // Warned before the end (the root, which ends the chain: no intermediate of it can help), at warn level.
    const log = () => cp.stdout() + cp.stderr();
    await until('the root warning', () => log().includes("the signing authority's root is near its end"), rootEnd - Date.now());
    const warning = log().split('\n').find((l) => l.includes("the signing authority's root is near its end"))!;
    expect(JSON.parse(warning)).toMatchObject({ level: 'warn', authority, root: 'offline', notAfter: iso, prepared: null });
    expect(log()).not.toContain("the offline root's signing intermediate is past half its lifetime");
    expect(Date.now(), 'the steps before the root ends took longer than SHORT_ROOT_MS').toBeLessThan(rootEnd);
    expect((await ready(admin)).status).toBe(200);

    // The root expired: not ready, and why.
    await until('/ready is 503', async () => (await ready(admin)).status === 503, rootEnd - Date.now() + 30_000);
    expect((await ready(admin)).text).toMatch(/^not ready: the CA's signing chain ended at .* \(its root expired\)/);
    expect(await cp.stop({ graceMs: 15_000 })).toBe(0);
  }, 300_000);
});
