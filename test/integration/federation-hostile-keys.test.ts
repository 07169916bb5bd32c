// A federated partner's bundle endpoint serving a valid but costly document (audit 38c F1), against a real control
// plane process over real HTTPS (https_web, a test CA): 241 copies of one RSA-4096 CA certificate and 15 fresh RSA-4096
// JWT keys on every fetch (a peer rotating keys as fast as refreshMin lets it). The RSA key rules used to run
// synchronously for every entry, twice per authority, on every fetch and again at start: /healthz went unanswered for
// tens of seconds per fetch and a start with such a document kept took ~47 s to be ready. Now /healthz answers at
// every probe while the documents are fetched and judged, and a start with one kept is ready within the usual start
// deadline, its bytes fetched again not judged again. Bounded waits, never a timed assertion.
import { type KeyObject, checkPrime, generateKeyPair, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { encodePem } from '../../common/pki/pem.js';
import { type RunningControlPlane, startControlPlaneProcess } from '../helpers/control-plane.js';
import { forgeCertificate } from '../helpers/cert-forge.js';
import { sumSeries } from '../helpers/prom-metrics.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const COPIES = 241;
const FRESH_KEYS = 15; // with the authority's key: 16 distinct RSA keys, the most a document may hold
/** Primes below 752: a modulus with none of them as a factor passes that rule and reaches the costly ones. */
const SMALL_PRIMES = Array.from({ length: 750 }, (_, i) => BigInt(i + 2)).filter((p, _, all) => all.every((q) => q >= p || p % q !== 0n));

let dir: string;
let cleanup: () => Promise<void>;
let endpoint: Server;
let configFile: string;
let cp: RunningControlPlane | undefined;
let authority: Record<string, unknown>;
/**
 * Made ahead, one per fetch (the last one served again once they run out). Five: the first test serves documents up
 * to the first fetch seen + 3 (fetch 4 in practice; 5 leaves a margin), then empty answers.
 */
let documents: string[];
let served: (() => string) | undefined;
let requests = 0;

/** A 4096-bit odd composite without a factor below 752: every rule runs on it, and it passes them. */
async function freshModulus(): Promise<string> {
  for (;;) {
    const b = randomBytes(512);
    b[0]! |= 0x80;
    b[511]! |= 1;
    const n = BigInt(`0x${b.toString('hex')}`);
    // Primality on the thread pool: this process serves the endpoint and probes /healthz, it must not stall either.
    if (SMALL_PRIMES.every((p) => n % p !== 0n) && !(await promisify(checkPrime)(n))) return b.toString('base64url');
  }
}

/** A hostile document: the authority 241 times, then 15 RSA-4096 JWT keys never seen before. */
async function hostileDocument(sequence: number): Promise<string> {
  const jwt = [];
  for (let i = 0; i < FRESH_KEYS; i++) jwt.push({ kty: 'RSA', n: await freshModulus(), e: 'AQAB', use: 'jwt-svid', kid: `fresh-${sequence}-${i}` });
  return JSON.stringify({ keys: [...Array.from({ length: COPIES }, () => authority), ...jwt], spiffe_sequence: sequence, spiffe_refresh_hint: 0 });
}

const metrics = async () => (await fetch(`http://${cp!.admin}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
const accepted = async () => sumSeries(await metrics(), 'tessera_federation_bundle_fetches_total', { trust_domain: 'c.test' });
const logs = () => `${cp!.stdout()}${cp!.stderr()}`;

/** /healthz answered 200, waiting at most 5 s: a control plane whose event loop is held fails this. */
async function healthy(): Promise<void> {
  const res = await fetch(`http://${cp!.admin}/healthz`, { signal: AbortSignal.timeout(5_000) });
  expect(res.status).toBe(200);
  await res.arrayBuffer();
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const rsa = await promisify(generateKeyPair)('rsa', { modulusLength: 4096 });
  const now = Date.now();
  const root = forgeCertificate({ cn: 'Partner RSA-4096 root', key: rsa as { publicKey: KeyObject; privateKey: KeyObject }, ca: true, uriSans: ['spiffe://c.test'], notBefore: new Date(now - 3_600_000), notAfter: new Date(now + 86_400_000) });
  authority = { ...(root.cert.publicKey.export({ format: 'jwk' }) as object), use: 'x509-svid', x5c: [root.cert.raw.toString('base64')] };
  documents = [];
  for (let sequence = 1; sequence <= 5; sequence++) documents.push(await hostileDocument(sequence));
  const web = await TestCa.create({ trustDomain: 'web.test' });
  const svid = await web.mintSvid('spiffe://web.test/bundle-endpoint', { dnsSans: ['localhost'] });
  endpoint = createServer({ cert: svid.chainPem, key: svid.keyPem }, (_req, res) => {
    requests++;
    res.setHeader('content-type', 'application/json');
    res.end(served?.() ?? '');
  });
  await new Promise<void>((r) => endpoint.listen(0, '127.0.0.1', r));
  await mkdir(join(dir, 'cp'), { recursive: true });
  await writeFile(join(dir, 'cp', 'web-ca.pem'), encodePem('CERTIFICATE', web.root.cert.raw));
  configFile = join(dir, 'cp', 'cp.yaml');
  await writeFile(
    configFile,
    [
      'trustDomain: example.org',
      'dataDir: ./data',
      'listen: 127.0.0.1:0',
      'adminListen: 127.0.0.1:0',
      'logLevel: info',
      'federation:',
      '  refreshMin: 1s',
      '  refreshMax: 1h',
      '  fetchTimeout: 5s',
      '  trustDomains:',
      '    - trustDomain: c.test',
      `      bundleEndpointUrl: https://localhost:${(endpoint.address() as AddressInfo).port}/`,
      '      profile: https_web',
      '      caFile: web-ca.pem',
      '',
    ].join('\n'),
  );
}, 60_000);

afterAll(async () => {
  await cp?.stop();
  endpoint?.close();
  await cleanup?.();
});

describe('a bundle endpoint serving costly documents (audit 38c F1)', () => {
  test('/healthz answers at every probe while the documents are fetched and judged, fetch after fetch', async () => {
    served = () => documents[Math.min(requests, documents.length) - 1]!;
    cp = await startControlPlaneProcess(join(dir, 'cp'), configFile);
    await until('the endpoint served its first document', () => requests >= 1, 20_000);
    // Each fetch is a new document (15 keys never seen): judged, then fetched again a second later.
    const upTo = Math.min(requests + 3, documents.length);
    for (let probes = 0; requests < upTo && probes < 300; probes++) {
      await healthy();
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(requests).toBeGreaterThanOrEqual(upTo);
    await until('a document was taken', async () => (await accepted()) >= 1, 30_000);
    expect(logs()).not.toMatch(/federated bundle refused/);
    await healthy();
    // No more documents (an empty answer, refused at once). A fetch starts only when the one before has ended, so two
    // more requests mean the one under way has been judged; then the kept document is the last one taken.
    served = undefined;
    const before = requests;
    await until('the fetch under way has ended', () => requests >= before + 2, 30_000);
    expect(await cp.stop()).toBe(0);
    cp = undefined;
    expect((JSON.parse(await readFile(join(dir, 'cp', 'data', 'federation', 'c.test.json'), 'utf8')) as { keys: unknown[] }).keys).toHaveLength(COPIES + FRESH_KEYS);
  }, 120_000);

  test('started with such a document kept, it is ready within the usual start deadline; the same bytes fetched are not judged again', async () => {
    await cp?.stop();
    const kept = await hostileDocument(100);
    await mkdir(join(dir, 'cp', 'data', 'federation'), { recursive: true });
    await writeFile(join(dir, 'cp', 'data', 'federation', 'c.test.json'), kept);
    served = () => kept;
    // The start deadline of every other test (20 s): judging the kept document used to take ~47 s of the start.
    cp = await startControlPlaneProcess(join(dir, 'cp'), configFile);
    await healthy();
    await until('the kept document fetched again and taken', async () => (await accepted()) >= 1, 30_000);
    // Taken up at the start (no warning), and the very same bytes fetched again changed nothing.
    expect(logs()).not.toMatch(/kept federated bundle is unusable/);
    expect(logs()).not.toMatch(/federated bundle updated/);
    await healthy();
  }, 120_000);
});
