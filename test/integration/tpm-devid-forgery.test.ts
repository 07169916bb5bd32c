// A PCR policy against a key that is not an attestation key (audit 56a F1), with a real software TPM: an IEEE
// 802.1AR DevID-style key (sign, NOT restricted) certified by the caFile CA signs, with tpm2_sign, a TPMS_ATTEST
// its holder wrote claiming the policy's PCR values, while the machine's real PCR 7 says otherwise. With
// pcrPolicy it is refused TESSERA_ERR_ATTESTATION_TPM_AK_NOT_ATTESTATION_KEY (so is its honest quote, and an AK
// certificate without tcg-kp-AIKCertificate, or with other purposes only), and the refusal is audited with what is
// missing and counted by the real control-plane process; the AK certified as docs/tpm-attestation.md says still
// attests under the policy. Without pcrPolicy the DevID's quotes attest: they prove possession of the key now, the
// one thing checked then.
import { createHash, createPublicKey } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { TpmChallengeResponseMsg, TpmEvidenceMsg } from '../../common/contract/identity-v1.js';
import { TesseraError } from '../../common/errors.js';
import { decodeCertificates } from '../../common/pki/pem.js';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair } from '../../common/pki/keys.js';
import { tpmQualifyingData } from '../../common/pki/tpm-binding.js';
import { TrustDomain } from '../../common/spiffe/trust-domain.js';
import { type TpmAttestor, createTpmAttestor, tpmEvidenceFromMessage } from '../../control-plane/src/attestation/tpm-attestor.js';
import { DEFAULT_TPM_ID_TEMPLATE } from '../../control-plane/src/attestation/tpm-spiffe-id.js';
import { resolveTpmAttestorConfig, type TpmAttestorInput } from '../../control-plane/src/config/tpm-config.js';
import { readCsr } from '../../control-plane/src/issuance/csr-reader.js';
import { TpmEvidenceSource } from '../../proxy/src/identity/tpm/tpm-evidence.js';
import { TpmQuoter } from '../../proxy/src/identity/tpm/tpm-quoter.js';
import { type RunningControlPlane, controlPlaneClients, errorCode, signSvid, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { sumSeries } from '../helpers/prom-metrics.js';
import { makeTempDir } from '../helpers/run.js';
import { type OpensslCa, type SoftwareTpm, certifyAk, checkAkLikeCa, extendPcr, opensslCa, provisionAk, provisionDevId, readPcrs, startSwtpm } from '../helpers/swtpm.js';
import { marshalQuote } from '../helpers/tpm-marshal.js';

const td = TrustDomain.parse('example.org');
const AK = '0x81010002';
const DEVID = '0x81010010';
const PCRS = [0, 7];
const SHA256 = 0x000b;
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const ANY_EKU = '2.5.29.37.0';

let dir: string;
let cleanup: () => Promise<void>;
let tpm: SoftwareTpm;
let ca: OpensslCa;
/** The state the machine booted in (the policy it no longer meets), and the state it is in now. */
let booted: Map<number, string>;
let now: Map<number, string>;
let devIdPub: string;
const files = { ak: '', akNoEku: '', devId: '', devIdClientAuth: '', devIdAnyEku: '' };
const clock = { nowMs: () => Date.now() };

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  tpm = await startSwtpm(dir);
  const ak = await provisionAk(tpm, dir, { handle: AK, alg: 'ecc' });
  const akPub = await checkAkLikeCa(tpm, dir, { handle: AK, ...ak });
  devIdPub = await provisionDevId(tpm, dir, DEVID);
  ca = await opensslCa(dir, 'tpm-ca');
  await certifyAk(dir, ca, akPub, 'node-1', 'ak');
  await certifyAk(dir, ca, akPub, 'node-1', 'ak-no-eku', null);
  await certifyAk(dir, ca, devIdPub, 'node-1', 'devid', null);
  await certifyAk(dir, ca, devIdPub, 'node-1', 'devid-client-auth', CLIENT_AUTH);
  await certifyAk(dir, ca, devIdPub, 'node-1', 'devid-any-eku', ANY_EKU);
  Object.assign(files, { ak: 'ak', akNoEku: 'ak-no-eku', devId: 'devid', devIdClientAuth: 'devid-client-auth', devIdAnyEku: 'devid-any-eku' });
  for (const k of Object.keys(files) as (keyof typeof files)[]) files[k] = join(dir, `${files[k]}.pem`);
  // The machine then booted something else: PCR 7 moves away from the state it booted in.
  booted = await readPcrs(tpm, PCRS);
  await extendPcr(tpm, 7, createHash('sha256').update('another boot loader').digest('hex'));
  now = await readPcrs(tpm, PCRS);
}, 60_000);

afterAll(async () => {
  await tpm?.stop();
  await cleanup?.();
});

const policyOf = (v: Map<number, string>): Partial<TpmAttestorInput> => ({ pcrPolicy: { bank: 'sha256', pcrs: Object.fromEntries([...v].map(([k, x]) => [String(k), x])) } });

function attestor(extra: Partial<TpmAttestorInput> = {}): TpmAttestor {
  const config = resolveTpmAttestorConfig({ caFile: ca.certFile, idTemplate: DEFAULT_TPM_ID_TEMPLATE, nonceTtl: 60_000, ...extra }, dir, (path, message) => new TesseraError('TESSERA_ERR_CONFIG_INVALID', `${path.join('.')}: ${message}`));
  return createTpmAttestor(config, { trustDomain: td, clock });
}

const challengeOf = (a: TpmAttestor) => async (): Promise<TpmChallengeResponseMsg> => {
  const c = a.challenge();
  return { nonce: c.nonce, expires_at_unix_ms: String(c.expiresAtMs), pcr_bank: c.pcrBank, pcrs: [...c.pcrs] };
};

async function csr(): Promise<{ der: Buffer; spki: Buffer }> {
  const der = await createCsr(generateKeyPair(), {});
  return { der, spki: readCsr(der).spkiDer };
}

/** An honest tpm2_quote by `key`, with the certificate chain of `certFile`. */
const quoted = (certFile: string, key: string, c: { der: Buffer }, challenge: () => Promise<TpmChallengeResponseMsg>) =>
  new TpmEvidenceSource({ quoter: new TpmQuoter({ ak: key, tcti: tpm.tcti }), akCertFile: certFile }).evidence(c.der, challenge);

/**
 * What the DevID's holder can make (the audit's forgery): a TPMS_ATTEST written by hand — TPM_GENERATED_VALUE,
 * type quote, the right extraData for the nonce and CSR, the digest of the PCR values `claimed` — signed by the
 * DevID key with tpm2_sign, which an unrestricted key allows.
 */
async function forged(certFile: string, claimed: Map<number, string>, c: { spki: Buffer }, challenge: () => Promise<TpmChallengeResponseMsg>): Promise<TpmEvidenceMsg> {
  const ch = await challenge();
  const digest = createHash('sha256');
  for (const p of PCRS) digest.update(Buffer.from(claimed.get(p)!, 'hex'));
  const attest = marshalQuote({ extraData: tpmQualifyingData(ch.nonce, c.spki), selections: [{ hashAlg: SHA256, pcrs: PCRS }], pcrDigest: digest.digest() });
  const [msg, sig] = [join(dir, 'forged.attest'), join(dir, 'forged.sig')];
  await writeFile(msg, attest);
  await tpm.tool('tpm2_sign', ['-c', DEVID, '-g', 'sha256', '-s', 'ecdsa', '-o', sig, msg]);
  return { ak_cert_chain: decodeCertificates(await readFile(certFile, 'utf8')), quote: attest, signature: await readFile(sig), nonce: ch.nonce };
}

async function refusal(p: Promise<unknown>): Promise<{ code: string; reason: unknown; attestedAs: unknown }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof TesseraError) return { code: e.code, reason: e.details['reason'], attestedAs: e.details['attestedAs'] };
    throw e;
  }
  throw new Error('accepted');
}

const keyHash = (pem: string) => createHash('sha256').update(createPublicKey(pem).export({ format: 'der', type: 'spki' })).digest('hex').slice(0, 32);

describe('a PCR policy needs an AK certificate (tcg-kp-AIKCertificate)', () => {
  test("the DevID's forged quote claiming the booted state is refused, though the machine's PCR 7 moved", async () => {
    const a = attestor(policyOf(booted));
    const c = await csr();
    const r = await refusal(forged(files.devId, booted, c, challengeOf(a)).then((ev) => a.attest(tpmEvidenceFromMessage(ev), c.spki)));
    expect(r.code).toBe('TESSERA_ERR_ATTESTATION_TPM_AK_NOT_ATTESTATION_KEY');
    expect(r.reason).toBe('the AK certificate has no extendedKeyUsage (it must list tcg-kp-AIKCertificate 2.23.133.8.3); pcrPolicy needs a certified AK');
    expect(r.attestedAs).toBe(`tpm:${keyHash(devIdPub)}`);
    // The machine really is elsewhere: its AK's honest quote does not meet the policy.
    const honest = await quoted(files.ak, AK, c, challengeOf(a));
    expect((await refusal(a.attest(tpmEvidenceFromMessage(honest), c.spki))).code).toBe('TESSERA_ERR_ATTESTATION_TPM_PCR_MISMATCH');
  });

  test("the DevID's honest quote of the current state, and certificates with other purposes only, are refused too", async () => {
    const a = attestor(policyOf(now));
    const c = await csr();
    const honest = await quoted(files.devId, DEVID, c, challengeOf(a));
    expect((await refusal(a.attest(tpmEvidenceFromMessage(honest), c.spki))).code).toBe('TESSERA_ERR_ATTESTATION_TPM_AK_NOT_ATTESTATION_KEY');
    const clientAuth = await refusal(forged(files.devIdClientAuth, now, c, challengeOf(a)).then((ev) => a.attest(tpmEvidenceFromMessage(ev), c.spki)));
    expect(clientAuth).toMatchObject({ code: 'TESSERA_ERR_ATTESTATION_TPM_AK_NOT_ATTESTATION_KEY', reason: `the AK certificate's extendedKeyUsage (${CLIENT_AUTH}) lacks tcg-kp-AIKCertificate 2.23.133.8.3; pcrPolicy needs a certified AK` });
    // anyExtendedKeyUsage says nothing about the key: no claim that it is restricted.
    const any = await refusal(forged(files.devIdAnyEku, now, c, challengeOf(a)).then((ev) => a.attest(tpmEvidenceFromMessage(ev), c.spki)));
    expect(any.code).toBe('TESSERA_ERR_ATTESTATION_TPM_AK_NOT_ATTESTATION_KEY');
  });

  test('an AK certified without the purpose (as the docs said before) is refused; certified as they say now, it attests', async () => {
    const a = attestor(policyOf(now));
    const c = await csr();
    const old = await quoted(files.akNoEku, AK, c, challengeOf(a));
    expect((await refusal(a.attest(tpmEvidenceFromMessage(old), c.spki))).code).toBe('TESSERA_ERR_ATTESTATION_TPM_AK_NOT_ATTESTATION_KEY');
    const ev = await quoted(files.ak, AK, c, challengeOf(a));
    expect((await a.attest(tpmEvidenceFromMessage(ev), c.spki)).attestedAs).toMatch(/^tpm:/);
  });

  test('without pcrPolicy the purpose is not asked: the DevID proves it holds its key now, and no more is checked', async () => {
    const a = attestor();
    const c = await csr();
    const want = `spiffe://example.org/tpm/${keyHash(devIdPub)}`;
    // Its forged quote claims PCR values, but without a policy no value is read: the nonce binding is what counts.
    const ev = await forged(files.devId, booted, c, challengeOf(a));
    expect((await a.attest(tpmEvidenceFromMessage(ev), c.spki)).spiffeId.toString()).toBe(want);
    const honest = await quoted(files.devId, DEVID, c, challengeOf(a));
    expect((await a.attest(tpmEvidenceFromMessage(honest), c.spki)).spiffeId.toString()).toBe(want);
    const old = await quoted(files.akNoEku, AK, c, challengeOf(a));
    expect((await a.attest(tpmEvidenceFromMessage(old), c.spki)).attestor).toBe('tpm');
  });
});

describe('through the control plane process with a pcrPolicy', () => {
  let cp: RunningControlPlane;
  let clients: ReturnType<typeof controlPlaneClients>;

  beforeAll(async () => {
    const cpDir = join(dir, 'cp');
    await mkdir(cpDir, { recursive: true });
    const pcrs = [...now].map(([k, v]) => `"${k}": "0x${v}"`).join(', ');
    cp = await startControlPlaneProcess(cpDir, await writeControlPlaneConfig(cpDir, `attestors:\n  tpm: { caFile: ${ca.certFile}, pcrPolicy: { bank: sha256, pcrs: { ${pcrs} } } }`));
    clients = controlPlaneClients(cp.grpc, await readFile(join(cp.dataDir, 'bundle.pem'), 'utf8'));
  }, 60_000);

  afterAll(async () => {
    clients?.close();
    await cp?.stop();
  });

  const challenge = (): Promise<TpmChallengeResponseMsg> =>
    new Promise((ok, fail) => clients.identity.TpmChallenge!({}, { deadline: Date.now() + 10_000 }, (e: Error | null, r: TpmChallengeResponseMsg) => (e ? fail(e) : ok(r))));

  test('the forged quote is refused, audited with what the certificate lacks and the DevID, and counted; the AK is issued', async () => {
    const c = await csr();
    const refused = await signSvid(clients.identity, { csr: c.der, tpm: await forged(files.devId, now, c, challenge) });
    expect(errorCode(refused.err)).toBe('TESSERA_ERR_ATTESTATION_TPM_AK_NOT_ATTESTATION_KEY');
    const lines = (await readFile(join(cp.dataDir, 'audit.log'), 'utf8')).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.find((l) => l['event'] === 'svid.refused' && l['code'] === 'TESSERA_ERR_ATTESTATION_TPM_AK_NOT_ATTESTATION_KEY')).toMatchObject({
      attestor: 'tpm',
      attestedAs: `tpm:${keyHash(devIdPub)}`,
      reason: 'the AK certificate has no extendedKeyUsage (it must list tcg-kp-AIKCertificate 2.23.133.8.3); pcrPolicy needs a certified AK',
    });
    const metrics = await (await fetch(`http://${cp.admin}/metrics`)).text();
    expect(sumSeries(metrics, 'tessera_attestation_failures_total', { reason: 'tpm_ak_not_attestation_key' })).toBe(1);
    expect(sumSeries(metrics, 'tessera_issuance_refusals_total', { code: 'TESSERA_ERR_ATTESTATION_TPM_AK_NOT_ATTESTATION_KEY' })).toBe(1);
    const issued = await signSvid(clients.identity, { csr: c.der, tpm: await quoted(files.ak, AK, c, challenge) });
    expect(issued.err).toBeNull();
    expect(issued.res?.spiffe_id).toMatch(/^spiffe:\/\/example\.org\/tpm\/[0-9a-f]{32}$/);
  });
});
