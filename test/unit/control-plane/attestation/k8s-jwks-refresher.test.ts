// The Kubernetes JWKS refresher on a fake clock and fake timers (test/helpers/fake-time.ts), its API server an
// in-memory HttpFetch that can fail or hold an answer: a failed fetch is retried on the API server's backoff until
// one succeeds, then every jwksRefresh (audit 38b F1); a token naming a key the file lacks fetches the keys now, the
// callers meanwhile sharing one fetch and no refetch made within minRefetchMs of the last, so a flood of made-up key
// ids is a bounded number of requests (audit 38b F2); and the attestor, wired to it, accepts a token of a key the
// API server has just published, and tells "not published" (UNKNOWN_KEY) from "could not be fetched" (FETCH_FAILED);
// a key set whose written file would be over what the attestor reads is refused, the last good file kept (audit 40a F2).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type CryptoKey, SignJWT, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { TesseraError, isTesseraError } from '../../../../common/errors.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import type { HttpFetch, HttpResponse } from '../../../../shared-io/https-fetch.js';
import { API_SERVER_RETRY } from '../../../../control-plane/src/attestation/k8s-api-fetch.js';
import { type JwksFetchResult, JwksRefresher } from '../../../../control-plane/src/attestation/k8s-jwks-refresher.js';
import { K8sJwtAttestor } from '../../../../control-plane/src/attestation/k8s-jwt-attestor.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { makeTempDir } from '../../../helpers/run.js';

const API = 'https://kube.test';
const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const INTERVAL_MS = 600_000;

let dir: string;
let cleanup: () => Promise<void>;
const keys: { kid: string; privateKey: CryptoKey; jwk: Record<string, unknown> }[] = [];
let n = 0;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  for (const kid of ['k1', 'k2']) {
    const pair = await generateKeyPair('ES256');
    keys.push({ kid, privateKey: pair.privateKey, jwk: { ...(await exportJWK(pair.publicKey)), kid, alg: 'ES256', use: 'sig' } });
  }
});
afterAll(() => cleanup?.());

/** The API server as the refresher sees it: up or down, the keys it publishes, answers it may hold back. */
class FakeApi {
  up = true;
  published: Record<string, unknown>[] = [keys[0]!.jwk];
  jwksReads = 0;
  held: (() => void)[] = [];
  hold = false;
  readonly fetch: HttpFetch = async (url) => {
    if (!this.up) throw new TesseraError('TESSERA_ERR_K8S_FETCH_FAILED', `${url}: connect ECONNREFUSED`);
    const answer = (body: unknown): HttpResponse => ({ status: 200, contentType: 'application/json', body: JSON.stringify(body) });
    if (url === `${API}/.well-known/openid-configuration`) return answer({ issuer: ISSUER, jwks_uri: `${API}/openid/v1/jwks` });
    this.jwksReads++;
    if (this.hold) await new Promise<void>((r) => this.held.push(r));
    return answer({ keys: this.published });
  };

  release(): void {
    for (const r of this.held.splice(0)) r();
  }
}

/** Lets every promise chain that is ready run (the fake fetch answers without I/O). */
const settle = () => new Promise<void>((r) => setImmediate(r));

function refresher(api: FakeApi, time: FakeTime, results: JwksFetchResult[] = []) {
  const file = join(dir, `jwks-${n++}.json`);
  const r = new JwksRefresher({ apiServer: API, fetch: api.fetch, bearerToken: () => 'cp-token', issuer: ISSUER, file, intervalMs: INTERVAL_MS, clock: time, timers: time, random: () => 0.5, onResult: (x) => results.push(x) });
  return { r, file, results };
}

async function rejection(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return isTesseraError(e) ? e.code : String(e);
  }
  return 'resolved';
}

describe('JwksRefresher: the schedule', () => {
  test('a failed first fetch is retried on the API server backoff until one succeeds, then every jwksRefresh', async () => {
    const api = new FakeApi();
    api.up = false;
    const time = new FakeTime();
    const { r, file, results } = refresher(api, time);
    expect(await r.start()).toBe(false);
    expect(results).toEqual([expect.objectContaining({ ok: false, cause: 'start', retryInMs: 500 })]);
    expect(results[0]!.detail).toContain('TESSERA_ERR_K8S_FETCH_FAILED');
    // The discovery watches' backoff (0.5 s doubling, capped at 30 s; random() = 0.5 is no jitter).
    const waits: number[] = [];
    for (let i = 0; i < 8; i++) {
      const wait = results.at(-1)!.retryInMs!;
      waits.push(wait);
      time.advance(wait - 1);
      await settle();
      expect(results).toHaveLength(i + 1);
      time.advance(1);
      await settle();
      expect(results).toHaveLength(i + 2);
      expect(results.at(-1)).toMatchObject({ ok: false, cause: 'retry' });
    }
    expect(waits).toEqual([500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
    expect(API_SERVER_RETRY.maxMs).toBe(30_000);

    // The API server is back: the next retry fetches the keys, long before jwksRefresh.
    api.up = true;
    time.advance(results.at(-1)!.retryInMs!);
    await settle();
    expect(results.at(-1)).toEqual({ ok: true, cause: 'retry', detail: '1 key(s)' });
    expect(JSON.parse(await readFile(file, 'utf8')).keys.map((k: { kid: string }) => k.kid)).toEqual(['k1']);
    // Then back on the regular interval, the backoff started over.
    const reads = api.jwksReads;
    time.advance(INTERVAL_MS - 1);
    await settle();
    expect(api.jwksReads).toBe(reads);
    time.advance(1);
    await settle();
    expect(api.jwksReads).toBe(reads + 1);
    expect(results.at(-1)).toMatchObject({ ok: true, cause: 'interval' });
    api.up = false;
    time.advance(INTERVAL_MS);
    await settle();
    expect(results.at(-1)).toMatchObject({ ok: false, cause: 'interval', retryInMs: 500 });

    // Stopped with a fetch in flight: that fetch schedules nothing, and nothing more is fetched.
    api.up = true;
    api.hold = true;
    time.advance(500);
    await settle();
    r.stop();
    api.release();
    await settle();
    expect(time.pending).toBe(0);
    const last = api.jwksReads;
    time.advance(10 * INTERVAL_MS);
    await settle();
    expect(api.jwksReads).toBe(last);
  });

  test('the backoff is jittered (replicas that lost the API server together do not come back in step)', async () => {
    const waits = new Set<number>();
    for (const random of [0, 0.25, 0.75, 0.999]) {
      const api = new FakeApi();
      api.up = false;
      const time = new FakeTime();
      const results: JwksFetchResult[] = [];
      const r = new JwksRefresher({ apiServer: API, fetch: api.fetch, bearerToken: () => undefined, issuer: ISSUER, file: join(dir, `j-${n++}.json`), intervalMs: INTERVAL_MS, clock: time, timers: time, random: () => random, onResult: (x) => results.push(x) });
      await r.start();
      const wait = results[0]!.retryInMs!;
      expect(wait).toBeGreaterThanOrEqual(400);
      expect(wait).toBeLessThanOrEqual(600);
      waits.add(wait);
      r.stop();
    }
    expect(waits.size).toBe(4);
  });
});

describe('JwksRefresher: a refetch for an unknown key', () => {
  test('fetches now; callers meanwhile share the one fetch in flight; none within 5 s of the last', async () => {
    const api = new FakeApi();
    const time = new FakeTime();
    const { r, file, results } = refresher(api, time);
    await r.start();
    expect(api.jwksReads).toBe(1);
    // Within 5 s of the start's fetch: its outcome stands, nothing is asked.
    time.advance(4_999);
    await r.refetch();
    expect(api.jwksReads).toBe(1);

    time.advance(1);
    api.published = [keys[0]!.jwk, keys[1]!.jwk];
    api.hold = true;
    const waiting = Array.from({ length: 20 }, () => r.refetch());
    await settle();
    expect(api.jwksReads).toBe(2);
    api.release();
    await Promise.all(waiting);
    expect(api.jwksReads).toBe(2);
    expect(results.at(-1)).toEqual({ ok: true, cause: 'unknown-key', detail: '2 key(s)' });
    expect(JSON.parse(await readFile(file, 'utf8')).keys.map((k: { kid: string }) => k.kid)).toEqual(['k1', 'k2']);
    api.hold = false;

    // A flood: a refetch asked every 100 ms for a minute is one fetch per 5 s at most.
    for (let i = 0; i < 600; i++) {
      time.advance(100);
      await Promise.all([r.refetch(), r.refetch()]);
    }
    expect(api.jwksReads - 2).toBe(12);
    r.stop();
  });

  test('keys that could not be fetched reject the refetch with the failure, also when it is the last one standing', async () => {
    const api = new FakeApi();
    const time = new FakeTime();
    const { r } = refresher(api, time);
    await r.start();
    time.advance(5_000);
    api.up = false;
    expect(await rejection(r.refetch())).toBe('TESSERA_ERR_K8S_FETCH_FAILED');
    const reads = api.jwksReads;
    api.up = true;
    // Within 5 s of that failure: the failure stands (no fetch), so the caller still says "not known right now".
    time.advance(API_SERVER_RETRY.initialMs - 100);
    expect(await rejection(r.refetch())).toBe('TESSERA_ERR_K8S_FETCH_FAILED');
    expect(api.jwksReads).toBe(reads);
    // The failed refetch also set the backoff retry, which finds the API server back.
    time.advance(100);
    await settle();
    expect(api.jwksReads).toBe(reads + 1);
    expect(await rejection(r.refetch())).toBe('resolved');
    r.stop();
  });

  test('a wall clock set back does not hold refetches off', async () => {
    const api = new FakeApi();
    const time = new FakeTime();
    const { r } = refresher(api, time);
    await r.start();
    time.set(time.nowMs() - 3_600_000);
    await r.refetch();
    expect(api.jwksReads).toBe(2);
    r.stop();
  });
});

describe('K8sJwtAttestor with the refresher: a rotated cluster key, and keys that could not be fetched', () => {
  function wired(api: FakeApi, time: FakeTime) {
    const { r, file } = refresher(api, time);
    const attestor = new K8sJwtAttestor({ trustDomain: TrustDomain.parse('example.org'), issuer: ISSUER, audience: 'tessera', jwksFile: file, clock: time, refetchKeys: () => r.refetch() });
    return { r, attestor };
  }

  function token(time: FakeTime, kid: string, key = keys.find((k) => k.kid === kid)!.privateKey): Promise<string> {
    const now = Math.floor(time.nowMs() / 1000);
    return new SignJWT({ iss: ISSUER, aud: ['tessera'], sub: 'system:serviceaccount:shop:web', iat: now, exp: now + 600 }).setProtectedHeader({ alg: 'ES256', kid }).sign(key);
  }

  async function outcome(p: Promise<{ spiffeId: { toString(): string } }>): Promise<string> {
    try {
      return (await p).spiffeId.toString();
    } catch (e) {
      return isTesseraError(e) ? e.code : String(e);
    }
  }

  test('a token of a key published since the last fetch is attested at once; a key never published is UNKNOWN_KEY', async () => {
    const api = new FakeApi();
    const time = new FakeTime();
    const { r, attestor } = wired(api, time);
    await r.start();
    expect(await outcome(attestor.attest(await token(time, 'k1')))).toBe('spiffe://example.org/ns/shop/sa/web');
    time.advance(60_000);
    api.published = [keys[0]!.jwk, keys[1]!.jwk];
    expect(await outcome(attestor.attest(await token(time, 'k2')))).toBe('spiffe://example.org/ns/shop/sa/web');
    expect(api.jwksReads).toBe(2);

    // Made-up key ids, all at once and then one a second: UNKNOWN_KEY, and one fetch per 5 s at most.
    time.advance(60_000);
    const stranger = (await generateKeyPair('ES256')).privateKey;
    const flood = await Promise.all(Array.from({ length: 50 }, async (_, i) => outcome(attestor.attest(await token(time, `made-up-${i}`, stranger)))));
    expect(new Set(flood)).toEqual(new Set(['TESSERA_ERR_ATTESTATION_JWT_UNKNOWN_KEY']));
    expect(api.jwksReads).toBe(3);
    for (let i = 0; i < 20; i++) {
      time.advance(1_000);
      expect(await outcome(attestor.attest(await token(time, `later-${i}`, stranger)))).toBe('TESSERA_ERR_ATTESTATION_JWT_UNKNOWN_KEY');
    }
    expect(api.jwksReads).toBe(3 + 4);
    // A known kid with a bad signature is refused as before, asking for nothing.
    const reads = api.jwksReads;
    time.advance(60_000);
    expect(await outcome(attestor.attest(await token(time, 'k1', stranger)))).toBe('TESSERA_ERR_ATTESTATION_JWT_INVALID');
    expect(api.jwksReads).toBe(reads);
    r.stop();
  });

  test('no keys yet (started while the API server was away): a token fetches them; unreachable is FETCH_FAILED, not a verdict', async () => {
    const api = new FakeApi();
    api.up = false;
    const time = new FakeTime();
    const { r, attestor } = wired(api, time);
    expect(await r.start()).toBe(false);
    time.advance(400);
    expect(await outcome(attestor.attest(await token(time, 'k1')))).toBe('TESSERA_ERR_K8S_FETCH_FAILED');
    api.up = true;
    time.advance(5_000);
    expect(await outcome(attestor.attest(await token(time, 'k1')))).toBe('spiffe://example.org/ns/shop/sa/web');
    // A rotated key while the API server is away: not known right now (UNAVAILABLE), not "not published".
    time.advance(60_000);
    api.up = false;
    expect(await outcome(attestor.attest(await token(time, 'k2')))).toBe('TESSERA_ERR_K8S_FETCH_FAILED');
    r.stop();
  });

  test('a key set whose file would be over what the attestor reads (1 MiB) is refused: the last good file is kept and valid tokens still attest', async () => {
    const api = new FakeApi();
    const time = new FakeTime();
    const { r, attestor } = wired(api, time);
    await r.start();
    // Compact, a little under 1 MiB; written pretty-printed, over it.
    const kid = 'x'.repeat((1 << 20) - 400);
    api.published = [keys[0]!.jwk, { ...keys[1]!.jwk, kid }];
    expect(JSON.stringify({ keys: api.published }).length).toBeLessThan(1 << 20);
    time.advance(60_000);
    expect(await rejection(r.refetch())).toBe('TESSERA_ERR_K8S_DISCOVERY_INVALID');
    expect(await outcome(attestor.attest(await token(time, 'k1')))).toBe('spiffe://example.org/ns/shop/sa/web');
    r.stop();
  });
});
