// The proxy quotes with the signing scheme its AK was created with (audit 56a F3), against a real software TPM:
// tpm2_quote asks for RSASSA unless told, which an RSA-PSS AK (`tpm2_createak -s rsapss`, accepted by the control
// plane and listed by the docs) refuses, so such a proxy retried TESSERA_ERR_IDENTITY_TPM_QUOTE_FAILED forever.
// Now the quoter reads the AK's public area (tpm2_readpublic) first: an RSA-PSS AK attests, in process and with the
// real `tessera control-plane` and `tessera proxy` processes. The hash too (audit 56a F5): an AK made with
// `-g sha384` refused the configured default sha256; now its own hash is used, and a configured other one is an
// error naming both.
import { createHash, createPublicKey } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { TpmChallengeResponseMsg } from '../../common/contract/identity-v1.js';
import { TesseraError } from '../../common/errors.js';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair } from '../../common/pki/keys.js';
import { TrustDomain } from '../../common/spiffe/trust-domain.js';
import { type TpmAttestor, createTpmAttestor, tpmEvidenceFromMessage } from '../../control-plane/src/attestation/tpm-attestor.js';
import { resolveTpmAttestorConfig } from '../../control-plane/src/config/tpm-config.js';
import { readCsr } from '../../control-plane/src/issuance/csr-reader.js';
import { TpmEvidenceSource } from '../../proxy/src/identity/tpm/tpm-evidence.js';
import { TpmQuoter } from '../../proxy/src/identity/tpm/tpm-quoter.js';
import { type RunningControlPlane, TD, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { type ProxyProcess, startProxyProcess } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { type OpensslCa, type SoftwareTpm, certifyAk, checkAkLikeCa, opensslCa, provisionAk, startSwtpm } from '../helpers/swtpm.js';

const PSS_AK = '0x81010005';
const P384_AK = '0x81010006';
/** TPMT_SIGNATURE's sigAlg for RSA-PSS (TPM_ALG_RSAPSS), and its hashAlg for SHA-384. */
const TPM_ALG_RSAPSS = 0x0016;
const TPM_ALG_SHA384 = 0x000c;

let dir: string;
let cleanup: () => Promise<void>;
let tpm: SoftwareTpm;
let ca: OpensslCa;
let pssPub: string;
const clock = { nowMs: () => Date.now() };

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  tpm = await startSwtpm(dir);
  const pss = await provisionAk(tpm, dir, { handle: PSS_AK, alg: 'rsa', scheme: 'rsapss' });
  pssPub = await checkAkLikeCa(tpm, dir, { handle: PSS_AK, ...pss });
  ca = await opensslCa(dir, 'tpm-ca');
  await certifyAk(dir, ca, pssPub, 'node-pss', 'pss-ak');
  const p384 = await provisionAk(tpm, dir, { handle: P384_AK, alg: 'ecc384', hash: 'sha384', ek: false });
  await certifyAk(dir, ca, await checkAkLikeCa(tpm, dir, { handle: P384_AK, ...p384 }), 'node-p384', 'p384-ak');
}, 60_000);

afterAll(async () => {
  await tpm?.stop();
  await cleanup?.();
});

function attestor(): TpmAttestor {
  const config = resolveTpmAttestorConfig({ caFile: ca.certFile, idTemplate: '/node/{cn}', nonceTtl: 60_000 }, dir, (path, message) => new TesseraError('TESSERA_ERR_CONFIG_INVALID', `${path.join('.')}: ${message}`));
  return createTpmAttestor(config, { trustDomain: TrustDomain.parse(TD), clock });
}

const challengeOf = (a: TpmAttestor) => async (): Promise<TpmChallengeResponseMsg> => {
  const c = a.challenge();
  return { nonce: c.nonce, expires_at_unix_ms: String(c.expiresAtMs), pcr_bank: c.pcrBank, pcrs: [...c.pcrs] };
};

const evidenceOf = (ak: string, certFile: string, a: TpmAttestor, der: Buffer, hash?: 'sha256' | 'sha384') =>
  new TpmEvidenceSource({ quoter: new TpmQuoter({ ak, tcti: tpm.tcti, ...(hash ? { hash } : {}) }), akCertFile: join(dir, certFile) }).evidence(der, challengeOf(a));

describe('an ECDSA P-384 attestation key made with -g sha384', () => {
  test('is quoted with SHA-384 without any hash configured, and attests', async () => {
    const a = attestor();
    const der = await createCsr(generateKeyPair(), {});
    const ev = await evidenceOf(P384_AK, 'p384-ak.pem', a, der);
    expect(ev.signature.readUInt16BE(2)).toBe(TPM_ALG_SHA384);
    expect((await a.attest(tpmEvidenceFromMessage(ev), readCsr(der).spkiDer)).spiffeId.toString()).toBe(`spiffe://${TD}/node/node-p384`);
    // Its own hash configured: the same.
    const same = await evidenceOf(P384_AK, 'p384-ak.pem', a, der, 'sha384');
    expect((await a.attest(tpmEvidenceFromMessage(same), readCsr(der).spkiDer)).attestor).toBe('tpm');
  });

  test('another hash configured fails before the quote, naming both', async () => {
    const der = await createCsr(generateKeyPair(), {});
    await expect(evidenceOf(P384_AK, 'p384-ak.pem', attestor(), der, 'sha256')).rejects.toMatchObject({
      code: 'TESSERA_ERR_IDENTITY_TPM_QUOTE_FAILED',
      message: `tpm2_readpublic: identity.controlPlane.tpm.hash is sha256, but the attestation key ${P384_AK} signs with sha384 only (fixed by tpm2_createak -g): remove \`hash\`, it is read from the AK`,
    });
  });
});

describe('an RSA-PSS attestation key', () => {
  test('the quoter signs with RSA-PSS, as the AK was created, and the control plane accepts the quote', async () => {
    const a = attestor();
    const der = await createCsr(generateKeyPair(), {});
    const ev = await new TpmEvidenceSource({ quoter: new TpmQuoter({ ak: PSS_AK, tcti: tpm.tcti }), akCertFile: join(dir, 'pss-ak.pem') }).evidence(der, challengeOf(a));
    expect(ev.signature.readUInt16BE(0)).toBe(TPM_ALG_RSAPSS);
    expect((await a.attest(tpmEvidenceFromMessage(ev), readCsr(der).spkiDer)).spiffeId.toString()).toBe(`spiffe://${TD}/node/node-pss`);
  });

  describe('end to end: a `tessera proxy` on an RSA-PSS AK and the `tessera control-plane` process', () => {
    let cp: RunningControlPlane;
    let proxy: ProxyProcess;

    beforeAll(async () => {
      const cpDir = join(dir, 'cp');
      await mkdir(cpDir, { recursive: true });
      cp = await startControlPlaneProcess(cpDir, await writeControlPlaneConfig(cpDir, `attestors:\n  tpm: { caFile: ${ca.certFile}, idTemplate: "/node/{cn}" }`));
      const cfg = join(dir, 'pss-proxy.yaml');
      const lines = ['identity:', '  controlPlane:', `    address: ${cp.grpc}`, `    bundleFile: ${join(cp.dataDir, 'bundle.pem')}`, `    tpm: { akCertFile: ./pss-ak.pem, ak: "${PSS_AK}", tcti: "${tpm.tcti}" }`];
      // One inbound listener (a proxy needs one); nothing is sent to it.
      const inbound = ['inbound:', '  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:9 }'];
      await writeFile(cfg, [...lines, ...inbound, 'admin: { listen: 127.0.0.1:0 }', 'telemetry: { accessLog: off }', ''].join('\n'));
      // Ready means it holds an SVID: before the fix it stayed "no svid yet" (TPM_QUOTE_FAILED) until this timed out.
      proxy = await startProxyProcess(cfg, 30_000);
    }, 90_000);

    afterAll(async () => {
      await proxy?.stop();
      await cp?.stop();
    });

    test('gets the SVID its AK certificate maps to, audited as issued to the AK', async () => {
      const certs = (await (await fetch(`http://127.0.0.1:${proxy.admin}/certs`)).json()) as { spiffeId: string; source: string; serial: string };
      expect(certs).toMatchObject({ spiffeId: `spiffe://${TD}/node/node-pss`, source: 'control-plane' });
      const akHash = createHash('sha256').update(createPublicKey(pssPub).export({ format: 'der', type: 'spki' })).digest('hex').slice(0, 32);
      const lines = (await readFile(join(cp.dataDir, 'audit.log'), 'utf8')).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.find((l) => l['event'] === 'svid.issued' && l['serial'] === certs.serial)).toMatchObject({ attestedAs: `tpm:${akHash}`, kind: 'attest' });
    });
  });
});
