// TPM attestation end to end with real processes: `tessera control-plane` with attestors.tpm, a `tessera proxy`
// whose identity.controlPlane.tpm quotes with a software TPM (swtpm + tpm2-tools, the AK provisioned and
// certified as docs/tpm-attestation.md tells a user), and a join-token proxy calling it over mTLS. Then, as a
// client of the same control plane: a replayed quote, a quote bound to another nonce and an AK of another CA are
// each refused with their code, written to audit.log (with attestedAs once the AK is known) and counted in /metrics.
import { createHash, createPublicKey } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { TpmChallengeResponseMsg } from '../../common/contract/identity-v1.js';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair } from '../../common/pki/keys.js';
import { TpmEvidenceSource } from '../../proxy/src/identity/tpm/tpm-evidence.js';
import { TpmQuoter } from '../../proxy/src/identity/tpm/tpm-quoter.js';
import { type RunningControlPlane, TD, controlPlaneClients, errorCode, signSvid, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { type ProxyProcess, startAttestedProxy, startProxyProcess } from '../helpers/proxy-process.js';
import { sumSeries } from '../helpers/prom-metrics.js';
import { makeTempDir } from '../helpers/run.js';
import { type OpensslCa, type SoftwareTpm, certifyAk, checkAkLikeCa, opensslCa, provisionAk, startSwtpm } from '../helpers/swtpm.js';

const AK = '0x81010002';
const NODE = `spiffe://${TD}/node/node-1`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;

let dir: string;
let cleanup: () => Promise<void>;
let tpm: SoftwareTpm;
let ca: OpensslCa;
let cp: RunningControlPlane;
let node: ProxyProcess;
let web: ProxyProcess;
let app: ReturnType<typeof createServer>;
let akHash: string;
let clients: ReturnType<typeof controlPlaneClients>;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  tpm = await startSwtpm(dir);
  const ak = await provisionAk(tpm, dir, { handle: AK, alg: 'ecc' });
  const akPub = await checkAkLikeCa(tpm, dir, { handle: AK, ...ak });
  akHash = createHash('sha256').update(createPublicKey(akPub).export({ format: 'der', type: 'spki' })).digest('hex').slice(0, 32);
  ca = await opensslCa(dir, 'tpm-ca');
  await certifyAk(dir, ca, akPub, 'node-1', 'ak');
  await certifyAk(dir, await opensslCa(dir, 'other-ca'), akPub, 'node-1', 'ak-other');

  const cpDir = join(dir, 'cp');
  await mkdir(cpDir, { recursive: true });
  const cfg = await writeControlPlaneConfig(cpDir, `attestors:\n  tpm: { caFile: ${ca.certFile}, idTemplate: "/node/{cn}" }`);
  await writeFile(join(cpDir, 'policies', 'node.yaml'), `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: node-allow-web }\nspec:\n  selector: ${NODE}\n  action: ALLOW\n  rules:\n    - from: [${WEB}]\n`);
  cp = await startControlPlaneProcess(cpDir, cfg);
  clients = controlPlaneClients(cp.grpc, await readFile(join(cp.dataDir, 'bundle.pem'), 'utf8'));

  app = createServer((_req, res) => res.end('node app'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const nodeCfg = join(dir, 'node.yaml');
  await writeFile(
    nodeCfg,
    [
      'identity:',
      '  controlPlane:',
      `    address: ${cp.grpc}`,
      `    bundleFile: ${join(cp.dataDir, 'bundle.pem')}`,
      `    tpm: { akCertFile: ./ak.pem, ak: "${AK}", tcti: "${tpm.tcti}" }`,
      'inbound:',
      `  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${(app.address() as AddressInfo).port} }`,
      'admin: { listen: 127.0.0.1:0 }',
      'telemetry: { accessLog: off }',
      '',
    ].join('\n'),
  );
  node = await startProxyProcess(nodeCfg, 30_000);
  web = await startAttestedProxy(cp, dir, 'web', WEB, `outbound:\n  - { name: node, listen: 127.0.0.1:0, upstream: 127.0.0.1:${node.ports.get('inbound/app')}, spiffeId: ${NODE} }\n`);
}, 120_000);

afterAll(async () => {
  clients?.close();
  await web?.stop();
  await node?.stop();
  await cp?.stop();
  app?.close();
  await tpm?.stop();
  await cleanup?.();
});

function get(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/hello' }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const cpMetrics = async () => (await fetch(`http://${cp.admin}/metrics`)).text();

async function auditLines(): Promise<Record<string, unknown>[]> {
  return (await readFile(join(cp.dataDir, 'audit.log'), 'utf8'))
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Identity/TpmChallenge on the real control plane, as the proxy asks it. */
function challenge(): Promise<TpmChallengeResponseMsg> {
  return new Promise((ok, fail) => clients.identity.TpmChallenge!({}, { deadline: Date.now() + 10_000 }, (e: grpc.ServiceError | null, r: TpmChallengeResponseMsg) => (e ? fail(e) : ok(r))));
}

const quoter = (akCertFile: string) => new TpmEvidenceSource({ quoter: new TpmQuoter({ ak: AK, tcti: tpm.tcti }), akCertFile });

describe('a proxy attested by its TPM', () => {
  test('gets its SVID for the ID the AK certificate maps to, and serves mTLS with it', async () => {
    const certs = (await (await fetch(`http://127.0.0.1:${node.admin}/certs`)).json()) as { spiffeId: string; serial: string; servedSerial: string; source: string };
    expect(certs).toMatchObject({ spiffeId: NODE, source: 'control-plane' });
    expect(certs.servedSerial).toBe(certs.serial);
    // web → node over mTLS: web checks node's SPIFFE ID, node's policy admits web.
    expect(await get(web.ports.get('outbound/node')!)).toEqual({ status: 200, body: 'node app' });
    const issued = (await auditLines()).find((l) => l['event'] === 'svid.issued' && l['spiffeId'] === NODE);
    expect(issued).toMatchObject({ attestedAs: `tpm:${akHash}`, kind: 'attest', serial: certs.serial });
    expect(sumSeries(await cpMetrics(), 'tessera_issuances_total', { result: 'issued', attestor: 'tpm' })).toBe(1);
  });
});

describe('refusals through the control plane process', () => {
  test('a replayed quote is refused with TPM_NONCE_REPLAYED, audited with the AK and counted', async () => {
    const csr = await createCsr(generateKeyPair(), {});
    const evidence = await quoter(join(dir, 'ak.pem')).evidence(csr, challenge);
    const first = await signSvid(clients.identity, { csr, tpm: evidence });
    expect(first.err).toBeNull();
    expect(first.res?.spiffe_id).toBe(NODE);
    const replay = await signSvid(clients.identity, { csr, tpm: evidence });
    expect(errorCode(replay.err)).toBe('TESSERA_ERR_ATTESTATION_TPM_NONCE_REPLAYED');
    const line = (await auditLines()).find((l) => l['event'] === 'svid.refused' && l['code'] === 'TESSERA_ERR_ATTESTATION_TPM_NONCE_REPLAYED');
    expect(line).toMatchObject({ result: 'refused', attestor: 'tpm', attestedAs: `tpm:${akHash}` });
    const m = await cpMetrics();
    expect(sumSeries(m, 'tessera_issuance_refusals_total', { code: 'TESSERA_ERR_ATTESTATION_TPM_NONCE_REPLAYED' })).toBe(1);
    expect(sumSeries(m, 'tessera_attestation_failures_total', { reason: 'tpm_nonce_replayed' })).toBe(1);
    expect(sumSeries(m, 'tessera_issuances_total', { result: 'refused', attestor: 'tpm' })).toBe(1);
  });

  test('a quote bound to another nonce, and an AK of another CA, are refused, audited and counted', async () => {
    const csr = await createCsr(generateKeyPair(), {});
    const evidence = await quoter(join(dir, 'ak.pem')).evidence(csr, challenge);
    const other = await challenge();
    const mismatch = await signSvid(clients.identity, { csr, tpm: { ...evidence, nonce: other.nonce } });
    expect(errorCode(mismatch.err)).toBe('TESSERA_ERR_ATTESTATION_TPM_NONCE_MISMATCH');
    const untrusted = await signSvid(clients.identity, { csr, tpm: await quoter(join(dir, 'ak-other.pem')).evidence(csr, challenge) });
    expect(errorCode(untrusted.err)).toBe('TESSERA_ERR_ATTESTATION_TPM_AK_UNTRUSTED');
    const refused = (await auditLines()).filter((l) => l['event'] === 'svid.refused' && l['attestor'] === 'tpm');
    expect(refused.find((l) => l['code'] === 'TESSERA_ERR_ATTESTATION_TPM_NONCE_MISMATCH')).toMatchObject({ attestedAs: `tpm:${akHash}` });
    // An untrusted AK is refused before it is known: no attestedAs.
    expect(refused.find((l) => l['code'] === 'TESSERA_ERR_ATTESTATION_TPM_AK_UNTRUSTED')).not.toHaveProperty('attestedAs');
    const m = await cpMetrics();
    expect(sumSeries(m, 'tessera_attestation_failures_total', { reason: 'tpm_nonce_mismatch' })).toBe(1);
    expect(sumSeries(m, 'tessera_attestation_failures_total', { reason: 'tpm_ak_untrusted' })).toBe(1);
    // The genuine evidence was not spent by the refusal that carried another nonce.
    expect((await signSvid(clients.identity, { csr, tpm: evidence })).res?.spiffe_id).toBe(NODE);
  });
});
