// TPM attestation against a real software TPM (swtpm) driven by tpm2-tools, with attestation keys certified by
// CAs made with the openssl CLI: the proxy side (TpmEvidenceSource → tpm2_quote through the process supervisor)
// builds the evidence, the control plane side (TpmAttestor) verifies it. Accepted: a fresh quote (ECDSA and RSA
// AKs) with the expected SPIFFE ID, also over gRPC (TpmChallenge, then SignSvid's `tpm` evidence). Refused, each
// with its code: a replayed quote, a quote over another nonce or for another CSR key, an AK of another CA, a
// certificate for another key, an expired AK certificate, an expired or forged nonce, PCR values or a selection
// other than the policy's, tampered quote or signature bytes.
import { X509Certificate, createHash, createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { SignSvidRequestMsg, TpmChallengeResponseMsg, TpmEvidenceMsg } from '../../common/contract/identity-v1.js';
import { TesseraError } from '../../common/errors.js';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair } from '../../common/pki/keys.js';
import { TrustDomain } from '../../common/spiffe/trust-domain.js';
import { guardedService } from '../../control-plane/src/api/guarded-service.js';
import { type TpmAttestor, createTpmAttestor, tpmEvidenceFromMessage } from '../../control-plane/src/attestation/tpm-attestor.js';
import { DEFAULT_TPM_ID_TEMPLATE } from '../../control-plane/src/attestation/tpm-spiffe-id.js';
import { tpmChallengeHandler } from '../../control-plane/src/attestation/tpm-challenge-rpc.js';
import { resolveTpmAttestorConfig, type TpmAttestorInput } from '../../control-plane/src/config/tpm-config.js';
import { readCsr } from '../../control-plane/src/issuance/csr-reader.js';
import { TpmEvidenceSource } from '../../proxy/src/identity/tpm/tpm-evidence.js';
import { TpmQuoter } from '../../proxy/src/identity/tpm/tpm-quoter.js';
import { loadTesseraServices } from '../../shared-io/proto-loader.js';
import { makeTempDir } from '../helpers/run.js';
import { type OpensslCa, type SoftwareTpm, certifyAk, checkAkLikeCa, extendPcr, opensslCa, provisionAk, readPcrs, startSwtpm } from '../helpers/swtpm.js';

const td = TrustDomain.parse('example.org');
const EC_AK = '0x81010002';
const RSA_AK = '0x81010003';
const DAY = 86_400_000;

let dir: string;
let cleanup: () => Promise<void>;
let tpm: SoftwareTpm;
let ca: OpensslCa;
let otherCa: OpensslCa;
let ecAkPub: string;
/** The control plane's clock: set after the certificates are made, moved by the expiry tests. */
let nowMs = 0;
const clock = { nowMs: () => nowMs };

/** Files: the EC AK certified by `ca` (CN node-1) and by `otherCa`, the RSA AK by `ca` (CN node-2). */
const files = { ecAk: '', ecAkOtherCa: '', rsaAk: '' };

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  tpm = await startSwtpm(dir);
  // Node side, then the CA's checks (attributes, credential activation), as docs/tpm-attestation.md does it.
  const ecAk = await provisionAk(tpm, dir, { handle: EC_AK, alg: 'ecc' });
  const rsaAk = await provisionAk(tpm, dir, { handle: RSA_AK, alg: 'rsa', ek: false });
  ecAkPub = await checkAkLikeCa(tpm, dir, { handle: EC_AK, ...ecAk });
  const rsaAkPub = await checkAkLikeCa(tpm, dir, { handle: RSA_AK, ...rsaAk });
  ca = await opensslCa(dir, 'tpm-ca');
  otherCa = await opensslCa(dir, 'other-ca');
  await certifyAk(dir, ca, ecAkPub, 'node-1', 'ec-ak');
  await certifyAk(dir, otherCa, ecAkPub, 'node-1', 'ec-ak-other');
  await certifyAk(dir, ca, rsaAkPub, 'node-2', 'rsa-ak');
  files.ecAk = join(dir, 'ec-ak.pem');
  files.ecAkOtherCa = join(dir, 'ec-ak-other.pem');
  files.rsaAk = join(dir, 'rsa-ak.pem');
  nowMs = Date.now();
}, 60_000);

afterAll(async () => {
  await tpm?.stop();
  await cleanup?.();
});

function attestor(extra: Partial<TpmAttestorInput> = {}): TpmAttestor {
  // The block as the schema gives it: its defaults (the template, a 60 s nonce) filled in.
  const config = resolveTpmAttestorConfig({ caFile: ca.certFile, idTemplate: DEFAULT_TPM_ID_TEMPLATE, nonceTtl: 60_000, ...extra }, dir, (path, message) => new TesseraError('TESSERA_ERR_CONFIG_INVALID', `${path.join('.')}: ${message}`));
  return createTpmAttestor(config, { trustDomain: td, clock });
}

function source(akCertFile: string, ak = EC_AK): TpmEvidenceSource {
  return new TpmEvidenceSource({ quoter: new TpmQuoter({ ak, tcti: tpm.tcti }), akCertFile });
}

const challengeOf = (a: TpmAttestor) => async (): Promise<TpmChallengeResponseMsg> => {
  const c = a.challenge();
  return { nonce: c.nonce, expires_at_unix_ms: String(c.expiresAtMs), pcr_bank: c.pcrBank, pcrs: [...c.pcrs] };
};

/** A CSR with a fresh key, and its SubjectPublicKeyInfo as the control plane reads it. */
async function csr(): Promise<{ der: Buffer; spki: Buffer }> {
  const der = await createCsr(generateKeyPair(), {});
  return { der, spki: readCsr(der).spkiDer };
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

const akHash = (pem: string) => createHash('sha256').update(createPublicKey(pem).export({ format: 'der', type: 'spki' })).digest('hex');

describe('TPM attestation with swtpm', () => {
  test('a fresh quote by a certified ECDSA AK is accepted: spiffe://<td>/tpm/<AK key hash>', async () => {
    const a = attestor();
    const c = await csr();
    const ev = await source(files.ecAk).evidence(c.der, challengeOf(a));
    expect(ev.ak_cert_chain).toHaveLength(1);
    const id = await a.attest(tpmEvidenceFromMessage(ev), c.spki);
    expect(id.spiffeId.toString()).toBe(`spiffe://example.org/tpm/${akHash(ecAkPub).slice(0, 32)}`);
    expect(id.attestor).toBe('tpm');
    expect(id.attestedAs).toBe(`tpm:${akHash(ecAkPub).slice(0, 32)}`);
  });

  test('an RSA AK with idTemplate /node/{cn} gets the CN of its certificate', async () => {
    const a = attestor({ idTemplate: '/node/{cn}' });
    const c = await csr();
    const ev = await source(files.rsaAk, RSA_AK).evidence(c.der, challengeOf(a));
    expect((await a.attest(tpmEvidenceFromMessage(ev), c.spki)).spiffeId.toString()).toBe('spiffe://example.org/node/node-2');
  });

  test('a replayed quote (same nonce twice) is refused', async () => {
    const a = attestor();
    const c = await csr();
    const ev = tpmEvidenceFromMessage(await source(files.ecAk).evidence(c.der, challengeOf(a)));
    await a.attest(ev, c.spki);
    const r = await refusal(a.attest(ev, c.spki));
    expect(r.code).toBe('TESSERA_ERR_ATTESTATION_TPM_NONCE_REPLAYED');
    expect(r.attestedAs).toBe(`tpm:${akHash(ecAkPub).slice(0, 32)}`);
  });

  test('a quote over another nonce, or bound to another CSR key, is refused', async () => {
    const a = attestor();
    const c = await csr();
    const ev = await source(files.ecAk).evidence(c.der, challengeOf(a));
    // The quote binds nonce 1; the request names nonce 2 (a live nonce of this control plane).
    const other = a.challenge().nonce;
    expect((await refusal(a.attest(tpmEvidenceFromMessage({ ...ev, nonce: other }), c.spki))).code).toBe('TESSERA_ERR_ATTESTATION_TPM_NONCE_MISMATCH');
    // The quote binds CSR 1's key; the request carries CSR 2.
    const c2 = await csr();
    expect((await refusal(a.attest(tpmEvidenceFromMessage(ev), c2.spki))).code).toBe('TESSERA_ERR_ATTESTATION_TPM_NONCE_MISMATCH');
    // Neither refusal spent the nonce: the genuine request still passes.
    expect((await a.attest(tpmEvidenceFromMessage(ev), c.spki)).attestor).toBe('tpm');
  });

  test('an AK certified by another CA, or a certificate of another key, is refused', async () => {
    const a = attestor();
    const c = await csr();
    expect((await refusal(source(files.ecAkOtherCa).evidence(c.der, challengeOf(a)).then((ev) => a.attest(tpmEvidenceFromMessage(ev), c.spki)))).code).toBe('TESSERA_ERR_ATTESTATION_TPM_AK_UNTRUSTED');
    // The RSA AK's (valid) certificate sent with the EC AK's quote.
    const ev = await source(files.rsaAk, EC_AK).evidence(c.der, challengeOf(a));
    expect((await refusal(a.attest(tpmEvidenceFromMessage(ev), c.spki))).code).toBe('TESSERA_ERR_ATTESTATION_TPM_BAD_SIGNATURE');
    // A CA certificate sent as the AK certificate.
    const caAsAk = { ...ev, ak_cert_chain: [new X509Certificate(ca.pem).raw] };
    expect((await refusal(a.attest(tpmEvidenceFromMessage(caAsAk), c.spki))).code).toBe('TESSERA_ERR_ATTESTATION_TPM_AK_UNTRUSTED');
  });

  test('an expired AK certificate, an expired nonce and a forged nonce are refused', async () => {
    const a = attestor({ nonceTtl: 60_000 });
    const c = await csr();
    const start = nowMs;
    try {
      // The certificate is valid for one day: two days on, a fresh nonce finds it expired.
      nowMs = start + 2 * DAY;
      const late = await source(files.ecAk).evidence(c.der, challengeOf(a));
      expect((await refusal(a.attest(tpmEvidenceFromMessage(late), c.spki))).code).toBe('TESSERA_ERR_ATTESTATION_TPM_AK_EXPIRED');
      nowMs = start;
      const ev = await source(files.ecAk).evidence(c.der, challengeOf(a));
      nowMs = start + 61_000;
      expect((await refusal(a.attest(tpmEvidenceFromMessage(ev), c.spki))).code).toBe('TESSERA_ERR_ATTESTATION_TPM_NONCE_EXPIRED');
      nowMs = start;
      const forged = Buffer.from(ev.nonce);
      forged[5]! ^= 1;
      expect((await refusal(a.attest(tpmEvidenceFromMessage({ ...ev, nonce: forged }), c.spki))).code).toBe('TESSERA_ERR_ATTESTATION_TPM_NONCE_UNKNOWN');
      // A nonce of another control plane (another key).
      const foreign = attestor().challenge().nonce;
      expect((await refusal(a.attest(tpmEvidenceFromMessage({ ...ev, nonce: foreign }), c.spki))).code).toBe('TESSERA_ERR_ATTESTATION_TPM_NONCE_UNKNOWN');
    } finally {
      nowMs = start;
    }
  });

  test('a PCR policy: the current values pass; a changed PCR or another selection is refused', async () => {
    const values = await readPcrs(tpm, [0, 7]);
    const policyOf = (v: Map<number, string>) => ({ pcrPolicy: { bank: 'sha256' as const, pcrs: Object.fromEntries([...v].map(([k, x]) => [String(k), x])) } });
    const a = attestor(policyOf(values));
    const c = await csr();
    expect(a.challenge()).toMatchObject({ pcrBank: 'sha256', pcrs: [0, 7] });
    const ok = await source(files.ecAk).evidence(c.der, challengeOf(a));
    expect((await a.attest(tpmEvidenceFromMessage(ok), c.spki)).attestor).toBe('tpm');

    // The machine booted something else: PCR 7 moves, the same policy refuses the next quote.
    await extendPcr(tpm, 7, createHash('sha256').update('another boot loader').digest('hex'));
    const moved = await source(files.ecAk).evidence(c.der, challengeOf(a));
    const r = await refusal(a.attest(tpmEvidenceFromMessage(moved), c.spki));
    expect(r.code).toBe('TESSERA_ERR_ATTESTATION_TPM_PCR_MISMATCH');
    expect(r.reason).toBe('the values of sha256:0,7 differ from the policy');

    // A quote over other PCRs than the policy asks for (a proxy that ignores the challenge's selection).
    const narrow = await source(files.ecAk).evidence(c.der, async () => ({ ...(await challengeOf(a)()), pcrs: [0] }));
    expect((await refusal(a.attest(tpmEvidenceFromMessage(narrow), c.spki))).reason).toBe('the quote selects sha256:0; the policy needs sha256:0,7');
    // The policy updated to the new values accepts it again.
    const b = attestor(policyOf(await readPcrs(tpm, [0, 7])));
    const again = await source(files.ecAk).evidence(c.der, challengeOf(b));
    expect((await b.attest(tpmEvidenceFromMessage(again), c.spki)).attestor).toBe('tpm');
  });

  test('tampered quote or signature bytes are refused; garbage is malformed', async () => {
    const a = attestor();
    const c = await csr();
    const ev = await source(files.ecAk).evidence(c.der, challengeOf(a));
    const flip = (b: Buffer, at: number) => {
      const x = Buffer.from(b);
      x[at]! ^= 0x01;
      return x;
    };
    // Byte 60 lies in extraData, 90 in the clock info: the structure still parses, the signature no longer holds.
    for (const at of [60, 90, ev.quote.length - 1]) {
      expect((await refusal(a.attest(tpmEvidenceFromMessage({ ...ev, quote: flip(ev.quote, at) }), c.spki))).code, `quote byte ${at}`).toBe('TESSERA_ERR_ATTESTATION_TPM_BAD_SIGNATURE');
    }
    expect((await refusal(a.attest(tpmEvidenceFromMessage({ ...ev, signature: flip(ev.signature, 20) }), c.spki))).code).toBe('TESSERA_ERR_ATTESTATION_TPM_BAD_SIGNATURE');
    expect((await refusal(a.attest(tpmEvidenceFromMessage({ ...ev, quote: ev.quote.subarray(0, 40) }), c.spki))).code).toBe('TESSERA_ERR_ATTESTATION_TPM_QUOTE_MALFORMED');
    expect((await refusal(a.attest(tpmEvidenceFromMessage({ ...ev, signature: Buffer.alloc(3) }), c.spki))).code).toBe('TESSERA_ERR_ATTESTATION_TPM_QUOTE_MALFORMED');
    expect((await refusal(a.attest(tpmEvidenceFromMessage(null), c.spki))).code).toBe('TESSERA_ERR_ATTESTATION_TPM_QUOTE_MALFORMED');
    // The untampered evidence is still good (nothing above spent its nonce).
    expect((await a.attest(tpmEvidenceFromMessage(ev), c.spki)).attestor).toBe('tpm');
  });

  test('the local quote fails with a coded error naming the tpm2-tools complaint', async () => {
    const c = await csr();
    const a = attestor();
    // No key at the handle: tpm2_readpublic, which reads the AK's scheme before the quote, says so.
    const noKey = new TpmEvidenceSource({ quoter: new TpmQuoter({ ak: '0x81010009', tcti: tpm.tcti }), akCertFile: files.ecAk });
    await expect(noKey.evidence(c.der, challengeOf(a))).rejects.toMatchObject({ code: 'TESSERA_ERR_IDENTITY_TPM_QUOTE_FAILED', message: /tpm2_readpublic: exited with 1/ });
    const noTool = new TpmEvidenceSource({ quoter: new TpmQuoter({ ak: EC_AK, tcti: tpm.tcti, command: join(dir, 'no-such-tpm2_quote') }), akCertFile: files.ecAk });
    await expect(noTool.evidence(c.der, challengeOf(a))).rejects.toMatchObject({ code: 'TESSERA_ERR_IDENTITY_TPM_QUOTE_FAILED', message: /could not start/ });
    await expect(source(join(dir, 'missing.pem')).evidence(c.der, challengeOf(a))).rejects.toMatchObject({ code: 'TESSERA_ERR_IDENTITY_FILE_UNREADABLE' });
  });
});

describe('TPM attestation over gRPC', () => {
  test('TpmChallenge, then SignSvid with the `tpm` evidence: the wire form carries every field', async () => {
    const a = attestor();
    const rejected: string[] = [];
    const services = loadTesseraServices();
    const server = new grpc.Server();
    const attested: string[] = [];
    server.addService(guardedService(services.identity.service, 65_536), {
      TpmChallenge: tpmChallengeHandler({ tpm: a, onRejected: (code) => rejected.push(code) }),
      // Stands in for the Issuer: attests the evidence as the wiring will (the CSR's key from readCsr).
      SignSvid: (call: grpc.ServerUnaryCall<SignSvidRequestMsg, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        expect(call.request.evidence).toBe('tpm');
        a.attest(tpmEvidenceFromMessage(call.request.tpm), readCsr(call.request.csr!).spkiDer).then(
          (id) => {
            attested.push(id.spiffeId.toString());
            cb(null, { svid_chain: [], bundles: [], spiffe_id: id.spiffeId.toString(), not_after_unix_ms: '0', serial: '' });
          },
          (e: TesseraError) => cb({ code: grpc.status.UNAUTHENTICATED, details: e.code }),
        );
      },
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    const client = new services.identity(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, (...a: unknown[]) => void>;
    const call = <T>(method: string, req: object) => new Promise<T>((ok, fail) => client[method]!(req, (e: grpc.ServiceError | null, r: T) => (e ? fail(e) : ok(r))));
    try {
      const c = await csr();
      let seen: TpmChallengeResponseMsg | undefined;
      const ev: TpmEvidenceMsg = await source(files.ecAk).evidence(c.der, async () => {
        seen = await call<TpmChallengeResponseMsg>('TpmChallenge', {});
        return seen;
      });
      expect(seen?.pcr_bank).toBe('sha256');
      expect(seen?.pcrs).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      expect(Number(seen?.expires_at_unix_ms)).toBe(nowMs + 60_000);
      const res = await call<{ spiffe_id: string }>('SignSvid', { csr: c.der, tpm: ev });
      expect(res.spiffe_id).toBe(`spiffe://example.org/tpm/${akHash(ecAkPub).slice(0, 32)}`);
      await expect(call('SignSvid', { csr: c.der, tpm: ev })).rejects.toMatchObject({ details: 'TESSERA_ERR_ATTESTATION_TPM_NONCE_REPLAYED' });
      expect(attested).toHaveLength(1);
      expect(rejected).toEqual([]);
    } finally {
      client.close();
      server.forceShutdown();
    }
  });

  test('without attestors.tpm TpmChallenge answers UNAUTHENTICATED with TESSERA_ERR_ATTESTATION_DISABLED, and is counted', async () => {
    const services = loadTesseraServices();
    const server = new grpc.Server();
    const rejected: string[] = [];
    server.addService(guardedService(services.identity.service, 65_536), { TpmChallenge: tpmChallengeHandler({ onRejected: (code) => rejected.push(code) }) });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    const client = new services.identity(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, (...a: unknown[]) => void>;
    try {
      const err = await new Promise<grpc.ServiceError>((ok) => client['TpmChallenge']!({}, (e: grpc.ServiceError) => ok(e)));
      expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(err.metadata.get('tessera-error-code')).toEqual(['TESSERA_ERR_ATTESTATION_DISABLED']);
      expect(rejected).toEqual(['TESSERA_ERR_ATTESTATION_DISABLED']);
    } finally {
      client.close();
      server.forceShutdown();
    }
  });
});
