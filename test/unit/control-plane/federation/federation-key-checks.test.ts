// What a federated peer's document costs the control plane is bounded whatever it holds (audit 38c F1): the RSA key
// rules run once per distinct key of a document (256 copies of one authority: one run), not again for a refetch of
// the same document, nor for the same keys in a new one; more than MAX_BUNDLE_RSA_KEYS distinct RSA keys are refused
// before any run; and the document is read a few entries per turn of the event loop. Counted, never timed.
import { type KeyObject, createPublicKey, generateKeyPair, generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test, vi } from 'vitest';
import { systemClock } from '../../../../common/clock.js';
import { rsaKeyWeakness } from '../../../../common/pki/rsa-key-strength.js';
import { RsaKeyVerdicts } from '../../../../common/pki/rsa-key-verdicts.js';
import { MAX_BUNDLE_RSA_KEYS, parseSpiffeBundle } from '../../../../common/spiffe/spiffe-bundle.js';
import { TrustBundle } from '../../../../common/spiffe/trust-bundle.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { acceptFederatedBundle } from '../../../../control-plane/src/federation/federated-bundle.js';
import { type FederatedDomain, Federation } from '../../../../control-plane/src/federation/federation.js';
import { realTimers } from '../../../../shared-io/timers.js';
import { forgeCertificate } from '../../../helpers/cert-forge.js';
import { TestCa } from '../../../helpers/test-ca.js';

const C = TrustDomain.parse('c.test');
const silent = { info: () => {}, warn: () => {}, error: () => {} };
const inThread = async (key: KeyObject) => rsaKeyWeakness(key);

let rsaCa: TestCa;
let ecCa: TestCa;
let webCa: TestCa;
let ownCa: TestCa;
let rsaKeys: KeyObject[];
let server: Server;
let port: number;
let served = '';

const x509Entry = (ca: TestCa) => ({ ...(ca.root.cert.publicKey.export({ format: 'jwk' }) as object), use: 'x509-svid', x5c: [ca.root.cert.raw.toString('base64')] });
const jwtEntry = (key: KeyObject, kid: string) => ({ ...(key.export({ format: 'jwk' }) as object), use: 'jwt-svid', kid });
const copies = (ca: TestCa, n: number, sequence = 1) => JSON.stringify({ keys: Array.from({ length: n }, () => x509Entry(ca)), spiffe_sequence: sequence, spiffe_refresh_hint: 0 });

/**
 * Runs of the RSA key rules: each reads the key's modulus once, as a JWK (rsaKeyWeakness), so counting those reads
 * counts the runs whichever code asks for them (the judge given here, or the parser itself as it used to).
 */
let ruleRuns: () => number;

beforeAll(async () => {
  [rsaCa, ecCa, webCa, ownCa] = await Promise.all([
    TestCa.create({ trustDomain: 'c.test', algorithm: 'rsa-2048' }),
    TestCa.create({ trustDomain: 'c.test' }),
    TestCa.create({ trustDomain: 'web.test' }),
    TestCa.create({ trustDomain: 'a.test' }),
  ]);
  rsaKeys = (await Promise.all(Array.from({ length: MAX_BUNDLE_RSA_KEYS + 1 }, () => promisify(generateKeyPair)('rsa', { modulusLength: 2048 })))).map((k) => k.publicKey);
  const svid = await webCa.mintSvid('spiffe://web.test/bundle-endpoint', { dnsSans: ['localhost'] });
  server = createServer({ cert: svid.chainPem, key: svid.keyPem }, (_req, res) => res.end(served));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
}, 60_000);

afterAll(() => {
  server?.close();
});

beforeEach(() => {
  const spy = vi.spyOn(Object.getPrototypeOf(rsaCa.root.cert.publicKey) as { export: KeyObject['export'] }, 'export');
  ruleRuns = () => spy.mock.calls.filter(([o], i) => (o as { format?: string } | undefined)?.format === 'jwk' && (spy.mock.contexts[i] as KeyObject).asymmetricKeyType === 'rsa').length;
});

afterEach(() => {
  vi.restoreAllMocks();
});

/** A Federation of c.test over https_web (the test endpoint), judging RSA keys by `keyWeakness`. */
function federation(keyWeakness: (key: KeyObject) => Promise<string | null>, bootstrap?: string, kept?: string) {
  const events = { accepted: 0, changes: 0, refused: [] as string[], warnings: [] as string[] };
  const d: FederatedDomain = { trustDomain: C, bundleEndpointUrl: `https://localhost:${port}/`, profile: 'https_web', caPem: webCa.bundlePem(), ...(bootstrap ? { bootstrap } : {}) };
  const own = TrustBundle.parse('a.test', ownCa.bundlePem());
  const f = new Federation({
    domains: [d],
    ownBundle: () => own,
    ...{ clock: systemClock, timers: realTimers, refreshMinMs: 1_000, refreshMaxMs: 60_000, fetchTimeoutMs: 5_000 },
    log: { ...silent, warn: (o) => events.warnings.push(String(o['err'])) },
    ...(kept ? { store: { load: () => kept, save: () => {} } } : {}),
    onChange: () => events.changes++,
    onAccepted: () => events.accepted++,
    onRefused: (_td, code) => events.refused.push(code),
    keyWeakness,
  });
  return { f, d, events };
}

describe('the RSA key rules run once per distinct key', () => {
  test('a document of 256 copies of one RSA authority: one run (and in `svid verify`’s parser too)', async () => {
    const doc = copies(rsaCa, 256);
    const before = ruleRuns();
    const taken = await acceptFederatedBundle(doc, C, Date.now(), inThread);
    expect(taken.bundle.authorities).toHaveLength(1);
    expect(ruleRuns() - before).toBe(1);
    parseSpiffeBundle(doc);
    expect(ruleRuns() - before).toBe(2);
  });

  test('a refetch of the held document runs none, nor asks; a new document with the same keys asks but runs none', async () => {
    let asks = 0;
    const verdicts = new RsaKeyVerdicts({ judge: async (spki) => rsaKeyWeakness(createPublicKey({ key: spki, format: 'der', type: 'spki' })) });
    const { f, d, events } = federation((key) => {
      asks++;
      return verdicts.weakness(key);
    });
    // Nothing kept and no bootstrap bundle: nothing to load before the first fetch.
    const [first, next] = [copies(rsaCa, 256), copies(rsaCa, 256, 2)];
    served = first;
    const before = ruleRuns();
    await f.refresh(d);
    expect(events).toMatchObject({ accepted: 1, changes: 1, refused: [] });
    expect(ruleRuns() - before).toBe(1);
    const asked = asks;
    await f.refresh(d);
    await f.refresh(d);
    expect(events.accepted).toBe(3);
    expect(ruleRuns() - before).toBe(1);
    expect(asks).toBe(asked);
    served = next;
    await f.refresh(d);
    expect(events).toMatchObject({ accepted: 4, changes: 1, refused: [] });
    expect(asks).toBe(asked + 1);
    expect(ruleRuns() - before).toBe(1);
  });
});

describe('bounded whatever the document holds', () => {
  test(`more than ${MAX_BUNDLE_RSA_KEYS} distinct RSA keys: refused as malformed before any run; ${MAX_BUNDLE_RSA_KEYS} are taken`, async () => {
    const doc = (n: number) => JSON.stringify({ keys: [x509Entry(ecCa), ...rsaKeys.slice(0, n).map((k, i) => jwtEntry(k, `k${i}`))], spiffe_sequence: 1 });
    const [over, at] = [doc(MAX_BUNDLE_RSA_KEYS + 1), doc(MAX_BUNDLE_RSA_KEYS)];
    const before = ruleRuns();
    await expect(acceptFederatedBundle(over, C, Date.now(), inThread)).rejects.toMatchObject({ code: 'TESSERA_ERR_SPIFFE_BUNDLE_MALFORMED', message: expect.stringContaining(`more than ${MAX_BUNDLE_RSA_KEYS} distinct RSA keys`) });
    expect(ruleRuns() - before).toBe(0);
    expect(() => parseSpiffeBundle(over)).toThrow(expect.objectContaining({ code: 'TESSERA_ERR_SPIFFE_BUNDLE_MALFORMED' }));
    expect(ruleRuns() - before).toBe(0);
    expect((await acceptFederatedBundle(at, C, Date.now(), inThread)).jwtAuthorities).toHaveLength(MAX_BUNDLE_RSA_KEYS);
    expect(ruleRuns() - before).toBe(MAX_BUNDLE_RSA_KEYS);
  });

  test('a document is read a few entries per turn of the event loop, not in one go', async () => {
    const doc = copies(ecCa, 256);
    let turns = 0;
    let done = false;
    const turn = () => {
      if (done) return;
      turns++;
      setImmediate(turn);
    };
    setImmediate(turn);
    await acceptFederatedBundle(doc, C, Date.now(), inThread);
    done = true;
    // 256 entries, 8 per turn, then the authority: the loop turned at least 32 times while the document was read.
    expect(turns).toBeGreaterThanOrEqual(256 / 8);
  });

  test('the rules still hold on every path: a weak RSA key in a fetched document, a kept one, a PEM bootstrap bundle', async () => {
    const e3 = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 });
    const withJwt = JSON.stringify({ keys: [x509Entry(ecCa), jwtEntry(e3.publicKey, 'e3')] });
    await expect(acceptFederatedBundle(withJwt, C, Date.now(), inThread)).rejects.toMatchObject({ code: 'TESSERA_ERR_SPIFFE_BUNDLE_WEAK_KEY', message: expect.stringMatching(/keys\[1\].*exponent/) });
    served = withJwt;
    const fetched = federation(inThread);
    await fetched.f.refresh(fetched.d);
    expect(fetched.events.refused).toEqual(['TESSERA_ERR_SPIFFE_BUNDLE_WEAK_KEY']);
    // Kept by an earlier run (written by hand, say): not taken up at the start.
    const restarted = federation(inThread, undefined, withJwt);
    await restarted.f.load();
    expect(restarted.f.bundles()).toEqual([]);
    expect(restarted.events.warnings.join()).toMatch(/TESSERA_ERR_SPIFFE_BUNDLE_WEAK_KEY/);
    // A CA certificate on that key, handed over as a PEM bootstrap bundle: the start stops.
    const now = Date.now();
    const root = forgeCertificate({ cn: 'e = 3 root', key: e3, ca: true, uriSans: ['spiffe://c.test'], notBefore: new Date(now - 60_000), notAfter: new Date(now + 3_600_000) });
    const pem = `-----BEGIN CERTIFICATE-----\n${root.cert.raw.toString('base64')}\n-----END CERTIFICATE-----\n`;
    await expect(federation(inThread, pem).f.load()).rejects.toMatchObject({ code: 'TESSERA_ERR_SPIFFE_BUNDLE_WEAK_KEY', message: expect.stringMatching(/authority.*exponent/) });
  });
});
