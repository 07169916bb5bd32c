// TPM attestation across control-plane replicas: two attestor sets made by createAttestors (as main.ts makes them)
// on two PostgreSQL stores of one database, with a real software TPM (swtpm + tpm2-tools). A challenge answered by
// replica A is accepted on replica B (the seal key is the database's), and the same quote replayed on A is refused
// (the spent record is the database's); a nonce sealed by a process-local key is unknown to both. Without the
// shared store wired, attestors.tpm refuses to start rather than fall back to a per-process key.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { systemClock } from '../../common/clock.js';
import type { TpmChallengeResponseMsg } from '../../common/contract/identity-v1.js';
import { TesseraError } from '../../common/errors.js';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair } from '../../common/pki/keys.js';
import { TrustDomain } from '../../common/spiffe/trust-domain.js';
import { type Attestors, createAttestors } from '../../control-plane/src/attestation/attestors.js';
import { type TpmAttestor, createTpmAttestor, tpmEvidenceFromMessage } from '../../control-plane/src/attestation/tpm-attestor.js';
import { parseControlPlaneConfig } from '../../control-plane/src/config/cp-config.js';
import { readCsr } from '../../control-plane/src/issuance/csr-reader.js';
import { TpmEvidenceSource } from '../../proxy/src/identity/tpm/tpm-evidence.js';
import { TpmQuoter } from '../../proxy/src/identity/tpm/tpm-quoter.js';
import { openPostgresDatabase, type PostgresDatabase } from '../helpers/postgres-database.js';
import { openTestPgStore, recordingLog, type TestPgStore } from '../helpers/postgres-store.js';
import { makeTempDir } from '../helpers/run.js';
import { type SoftwareTpm, certifyAk, checkAkLikeCa, opensslCa, provisionAk, startSwtpm } from '../helpers/swtpm.js';

const AK = '0x81010002';

let dir: string;
let cleanup: () => Promise<void>;
let tpm: SoftwareTpm;
let server: PostgresDatabase;
let stores: TestPgStore[] = [];
let replicas: Attestors[] = [];
let config: ReturnType<typeof parseControlPlaneConfig>;
let source: TpmEvidenceSource;

const noBundle = () => {
  throw new Error('renewal is not exercised here');
};

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  [tpm, server] = await Promise.all([startSwtpm(dir), openPostgresDatabase()]);
  const ak = await provisionAk(tpm, dir, { handle: AK, alg: 'ecc' });
  const akPub = await checkAkLikeCa(tpm, dir, { handle: AK, ...ak });
  const ca = await opensslCa(dir, 'tpm-ca');
  await certifyAk(dir, ca, akPub, 'node-1', 'ak');
  source = new TpmEvidenceSource({ quoter: new TpmQuoter({ ak: AK, tcti: tpm.tcti }), akCertFile: join(dir, 'ak.pem') });
  config = parseControlPlaneConfig(`trustDomain: example.org\ndataDir: ./data\nattestors:\n  tpm: { caFile: ${ca.certFile}, idTemplate: "/node/{cn}" }\n`, join(dir, 'cp.yaml'));
  stores = await Promise.all([openTestPgStore(server.url), openTestPgStore(server.url)]);
  replicas = await Promise.all(stores.map((s) => createAttestors(config, { clock: systemClock, log: recordingLog(), tokens: s.store.tokens, nonces: s.store.nonces, bundle: noBundle })));
}, 90_000);

afterAll(async () => {
  for (const r of replicas) r.stop();
  await Promise.all(stores.map((s) => s.dispose()));
  await tpm?.stop();
  await server?.destroy();
  await cleanup?.();
});

const challengeOf = (a: TpmAttestor) => async (): Promise<TpmChallengeResponseMsg> => {
  const c = a.challenge();
  return { nonce: c.nonce, expires_at_unix_ms: String(c.expiresAtMs), pcr_bank: c.pcrBank, pcrs: [...c.pcrs] };
};

async function codeOf(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'accepted',
    (e: unknown) => (e instanceof TesseraError ? e.code : String(e)),
  );
}

describe('TPM attestation on two replicas sharing PostgreSQL', () => {
  test('challenge from A, SignSvid on B: accepted; the same quote replayed on A: refused', async () => {
    const [a, b] = [replicas[0]!.tpm!, replicas[1]!.tpm!];
    const der = await createCsr(generateKeyPair(), {});
    const ev = tpmEvidenceFromMessage(await source.evidence(der, challengeOf(a)));
    const id = await b.attest(ev, readCsr(der).spkiDer);
    expect(id.spiffeId.toString()).toBe('spiffe://example.org/node/node-1');
    expect(await codeOf(a.attest(ev, readCsr(der).spkiDer))).toBe('TESSERA_ERR_ATTESTATION_TPM_NONCE_REPLAYED');
    expect(await codeOf(b.attest(ev, readCsr(der).spkiDer))).toBe('TESSERA_ERR_ATTESTATION_TPM_NONCE_REPLAYED');
  });

  test('a nonce sealed with a process-local key (no shared store) is unknown to the replicas', async () => {
    const local = createTpmAttestor(config.attestors.tpm!, { trustDomain: TrustDomain.parse('example.org'), clock: systemClock });
    const der = await createCsr(generateKeyPair(), {});
    const ev = tpmEvidenceFromMessage(await source.evidence(der, challengeOf(local)));
    expect(await codeOf(replicas[0]!.tpm!.attest(ev, readCsr(der).spkiDer))).toBe('TESSERA_ERR_ATTESTATION_TPM_NONCE_UNKNOWN');
    // The local attestor itself accepts it: the refusal above is the key, not the quote.
    expect((await local.attest(ev, readCsr(der).spkiDer)).attestor).toBe('tpm');
  });

  test('attestors.tpm without the shared nonce store refuses to start', async () => {
    const e = await createAttestors(config, { clock: systemClock, log: recordingLog(), tokens: stores[0]!.store.tokens, bundle: noBundle }).catch((err: unknown) => err);
    expect(e).toMatchObject({ code: 'TESSERA_ERR_CP_START_FAILED', message: expect.stringContaining('attestors.tpm') });
  });
});
