// TPM attestation end to end with real processes: `tessera control-plane` with attestors.tpm, a `tessera proxy`
// whose identity.controlPlane.tpm quotes with a software TPM (swtpm + tpm2-tools, the AK provisioned and
// certified as docs/tpm-attestation.md tells a user), and a join-token proxy calling it over mTLS. Then, as a
// client of the same control plane: a replayed quote, a quote bound to another nonce and an AK of another CA are
// each refused with their code, written to audit.log (with attestedAs once the AK is known) and counted in /metrics;
// so is an AK chain through a CA whose RSA key has a 3,070-bit public exponent (made by the openssl CLI), before
// any signature is checked with that key, and a malformed quote or signature, its audit line naming which.
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
import { makeTempDir, run } from '../helpers/run.js';
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
let akPub: string;
let clients: ReturnType<typeof controlPlaneClients>;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  tpm = await startSwtpm(dir);
  const ak = await provisionAk(tpm, dir, { handle: AK, alg: 'ecc' });
  akPub = await checkAkLikeCa(tpm, dir, { handle: AK, ...ak });
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

/**
 * A CA made by the openssl CLI whose RSA-3072 key has a public exponent of 3,070 bits (OpenSSL takes any e < n up to
 * 3072 bits): signed by `parent`, or self-signed. Each signature check with its key costs ~200 times one with 65537.
 */
async function hugeExponentCa(name: string, parent: OpensslCa | null): Promise<OpensslCa> {
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.pem`);
  const ext = join(dir, `${name}.ext`);
  await writeFile(ext, 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n');
  const exponent = `0x${((1n << 3069n) + 65537n).toString(16)}`;
  const steps: string[][] = [['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:3072', '-pkeyopt', `rsa_keygen_pubexp:${exponent}`, '-out', keyFile]];
  if (parent) {
    steps.push(['req', '-new', '-key', keyFile, '-subj', `/CN=${name}`, '-out', join(dir, `${name}.csr`)]);
    steps.push(['x509', '-req', '-in', join(dir, `${name}.csr`), '-CA', parent.certFile, '-CAkey', parent.keyFile, '-set_serial', String(Date.now()), '-days', '1', '-extfile', ext, '-out', certFile]);
  } else {
    steps.push(['req', '-x509', '-new', '-key', keyFile, '-subj', `/CN=${name}`, '-days', '1', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', certFile]);
  }
  for (const args of steps) {
    const r = await run('openssl', args, { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`);
  }
  return { certFile, keyFile, pem: await readFile(certFile, 'utf8') };
}

// Audit 56a F2: each intermediate sent with an AK certificate checked the AK certificate's signature with its key
// before the path was known to reach caFile, and no rule looked at an RSA key's exponent: ~9 ms of the event loop a
// request for a 3,070-bit one, for anyone holding a free nonce (a refusal never spends it).
describe('an RSA key with a 3,070-bit public exponent on the AK chain', () => {
  test('is refused AK_UNTRUSTED, audited naming it, though caFile signed it and it certified the real AK', async () => {
    const hugeCa = await hugeExponentCa('huge-issuing', ca);
    await certifyAk(dir, hugeCa, akPub, 'node-1', 'ak-huge');
    await writeFile(join(dir, 'ak-huge-chain.pem'), (await readFile(join(dir, 'ak-huge.pem'), 'utf8')) + hugeCa.pem);
    const csr = await createCsr(generateKeyPair(), {});
    const r = await signSvid(clients.identity, { csr, tpm: await quoter(join(dir, 'ak-huge-chain.pem')).evidence(csr, challenge) });
    expect(r.res?.spiffe_id).toBeUndefined();
    expect(errorCode(r.err)).toBe('TESSERA_ERR_ATTESTATION_TPM_AK_UNTRUSTED');
    const line = (await auditLines()).find((l) => l['event'] === 'svid.refused' && typeof l['reason'] === 'string' && l['reason'].includes('public exponent'));
    expect(line).toMatchObject({ code: 'TESSERA_ERR_ATTESTATION_TPM_AK_UNTRUSTED', reason: 'the chain holds intermediate CN=huge-issuing: an RSA key with a public exponent of 3070 bits (at most 2^31-1)' });
  }, 60_000);

  test("the audit's chain, a look-alike CA of its own making with such a key, is refused as not certified by caFile", async () => {
    const lookAlike = await hugeExponentCa('Evil Int', null);
    await certifyAk(dir, lookAlike, akPub, 'node-1', 'ak-evil');
    await writeFile(join(dir, 'ak-evil-chain.pem'), (await readFile(join(dir, 'ak-evil.pem'), 'utf8')) + lookAlike.pem);
    const csr = await createCsr(generateKeyPair(), {});
    const r = await signSvid(clients.identity, { csr, tpm: await quoter(join(dir, 'ak-evil-chain.pem')).evidence(csr, challenge) });
    expect(errorCode(r.err)).toBe('TESSERA_ERR_ATTESTATION_TPM_AK_UNTRUSTED');
    const refused = (await auditLines()).filter((l) => l['event'] === 'svid.refused' && l['code'] === 'TESSERA_ERR_ATTESTATION_TPM_AK_UNTRUSTED');
    expect(refused.at(-1)).toMatchObject({ reason: 'not certified by a CA of attestors.tpm.caFile' });
  }, 60_000);
});

// Audit 56a F4: a malformed quote or signature was audited as "1 trailing byte(s)" or "empty" alike, though
// errors.md says the audit line names the field.
describe('malformed evidence through the control plane process', () => {
  test('each QUOTE_MALFORMED audit line names the field, quote or signature', async () => {
    const csr = await createCsr(generateKeyPair(), {});
    const evidence = await quoter(join(dir, 'ak.pem')).evidence(csr, challenge);
    const variants: [Partial<typeof evidence>, string][] = [
      [{ quote: Buffer.concat([evidence.quote, Buffer.from([0])]) }, 'quote: 1 trailing byte(s)'],
      [{ signature: Buffer.concat([evidence.signature, Buffer.from([0])]) }, 'signature: 1 trailing byte(s)'],
      [{ quote: Buffer.alloc(0) }, 'quote: empty'],
      [{ signature: Buffer.alloc(0) }, 'signature: empty'],
    ];
    for (const [change] of variants) {
      const r = await signSvid(clients.identity, { csr, tpm: { ...evidence, ...change } });
      expect(errorCode(r.err)).toBe('TESSERA_ERR_ATTESTATION_TPM_QUOTE_MALFORMED');
    }
    const reasons = (await auditLines()).filter((l) => l['event'] === 'svid.refused' && l['code'] === 'TESSERA_ERR_ATTESTATION_TPM_QUOTE_MALFORMED').map((l) => l['reason']);
    expect(reasons).toEqual(variants.map(([, reason]) => reason));
    // None of them spent the nonce: the genuine evidence is still issued.
    expect((await signSvid(clients.identity, { csr, tpm: evidence })).res?.spiffe_id).toBe(NODE);
  });
});
