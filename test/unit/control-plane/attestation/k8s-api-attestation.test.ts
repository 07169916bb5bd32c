// OIDC discovery + JWKS fetch and the TokenReview client, against a local HTTPS server started here that
// answers like kube-apiserver (its routes, status codes and TokenReview shapes), through the real node:https
// client with the server's CA pinned.
import { generateKeyPairSync } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Server, createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { type HttpFetch, createHttpsFetch } from '../../../../shared-io/https-fetch.js';
import { realTimers } from '../../../../shared-io/timers.js';
import { fetchK8sJwks, jwksDocument, parseJwks } from '../../../../control-plane/src/attestation/k8s-oidc-discovery.js';
import { kubernetesSpiffeId, reviewToken } from '../../../../control-plane/src/attestation/k8s-token-review.js';
import { type ServingPki, servingPki } from '../../../helpers/injector-fixtures.js';

const K8S = 'TESSERA_ERR_K8S_FETCH_FAILED' as const;

const CALLER = 'control-plane-sa-token';
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
const clock = { nowMs: () => 1_700_000_000_000 };

interface Seen {
  path: string;
  authorization?: string;
  body: string;
}

/** Mutable per-test answers of the fake API server. */
const state: { discovery: unknown; jwks: unknown; seen: Seen[] } = { discovery: {}, jwks: {}, seen: [] };
const REVIEWS: Record<string, unknown> = {
  'good-token': {
    authenticated: true,
    audiences: ['tessera'],
    user: {
      username: 'system:serviceaccount:shop:web',
      uid: 'a8f1c2d4-0000-4000-8000-000000000001',
      groups: ['system:serviceaccounts', 'system:serviceaccounts:shop', 'system:authenticated'],
      extra: {
        'authentication.kubernetes.io/pod-name': ['web-7d9f8'],
        'authentication.kubernetes.io/pod-uid': ['5b1f0e8e-0000-4000-8000-000000000002'],
        'authentication.kubernetes.io/credential-id': ['JTI=1a2b'],
      },
    },
  },
  // What the API server says once the bound pod is gone (or for any invalid token).
  'deleted-pod-token': { authenticated: false, error: '[invalid bearer token, pod "web-7d9f8" not found]' },
  'other-audience-token': { authenticated: true, audiences: [], user: { username: 'system:serviceaccount:shop:web' } },
  'unbound-token': { authenticated: true, audiences: ['tessera'], user: { username: 'system:serviceaccount:shop:web', extra: {} } },
  'user-token': {
    authenticated: true,
    audiences: ['tessera'],
    user: { username: 'alice@example.com', extra: { 'authentication.kubernetes.io/pod-name': ['x'], 'authentication.kubernetes.io/pod-uid': ['y'] } },
  },
};

function handler(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString();
    const path = (req.url ?? '').split('?')[0]!;
    state.seen.push({ path, body, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
    const json = (status: number, v: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(v));
    };
    if (path === '/slow') return; // never answers
    if (path === '/big') return json(200, { pad: 'x'.repeat(4096) });
    if (path === '/.well-known/openid-configuration' && req.method === 'GET') return json(200, state.discovery);
    if ((path === '/openid/v1/jwks' || path === '/external/jwks') && req.method === 'GET') return json(200, state.jwks);
    if (path === '/apis/authentication.k8s.io/v1/tokenreviews' && req.method === 'POST') {
      if (req.headers.authorization !== `Bearer ${CALLER}`) return json(401, { kind: 'Status', code: 401, reason: 'Unauthorized' });
      const review = JSON.parse(body) as { apiVersion: string; kind: string; spec: { token: string; audiences: string[] } };
      if (review.apiVersion !== 'authentication.k8s.io/v1' || review.kind !== 'TokenReview') return json(400, { kind: 'Status', code: 400 });
      const status = REVIEWS[review.spec.token] ?? { authenticated: false, error: 'invalid bearer token' };
      return json(201, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', metadata: { creationTimestamp: null }, spec: review.spec, status });
    }
    json(404, { kind: 'Status', code: 404, reason: 'NotFound' });
  });
}

let pki: ServingPki;
let servers: Server[] = [];
let api: string;
let external: string;
let fetch: HttpFetch;

async function listen(): Promise<string> {
  const s = createServer({ cert: pki.certPem, key: pki.keyPem }, handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return `https://localhost:${(s.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  pki = await servingPki(['localhost']);
  api = await listen();
  external = await listen();
  fetch = createHttpsFetch({ caPem: pki.caPem, timeoutMs: 2_000, code: K8S, timers: realTimers });
});
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
  servers = [];
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isTesseraError(e)) return `${e.code}: ${e.message}`;
    throw e;
  }
  throw new Error('expected a failure');
}

function discovery(over: Record<string, unknown> = {}) {
  return { issuer: 'https://kubernetes.default.svc.cluster.local', jwks_uri: `${external}/external/jwks`, response_types_supported: ['id_token'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256'], ...over };
}

describe('OIDC discovery and JWKS', () => {
  test('fetches and checks the issuer and the keys from the API server, with the bearer token', async () => {
    state.discovery = discovery();
    state.jwks = { keys: [{ ...rsa, use: 'sig', alg: 'RS256', kid: 'k1' }, { ...ec, kid: 'k2' }] };
    state.seen = [];
    const j = await fetchK8sJwks({ apiServer: api, fetch, clock, bearerToken: CALLER, expectedIssuer: 'https://kubernetes.default.svc.cluster.local' });
    expect(j.issuer).toBe('https://kubernetes.default.svc.cluster.local');
    expect(j.keys.map((k) => k.kid)).toEqual(['k1', 'k2']);
    expect(j.fetchedAtMs).toBe(clock.nowMs());
    expect(state.seen.map((s) => [s.path, s.authorization])).toEqual([
      ['/.well-known/openid-configuration', `Bearer ${CALLER}`],
      ['/openid/v1/jwks', `Bearer ${CALLER}`],
    ]);
    expect(JSON.parse(jwksDocument(j)).keys[0]).toEqual({ kty: 'RSA', n: rsa.n, e: rsa.e, kid: 'k1', alg: 'RS256', use: 'sig' });
  });

  test('following jwks_uri elsewhere never sends the bearer token there', async () => {
    state.discovery = discovery();
    state.jwks = { keys: [ec] };
    state.seen = [];
    await fetchK8sJwks({ apiServer: api, fetch, clock, bearerToken: CALLER, jwksFrom: 'discovery' });
    expect(state.seen.map((s) => [s.path, s.authorization])).toEqual([
      ['/.well-known/openid-configuration', `Bearer ${CALLER}`],
      ['/external/jwks', undefined],
    ]);
  });

  test('refuses another issuer, plain-http or missing URLs, alg none', async () => {
    state.jwks = { keys: [ec] };
    state.discovery = discovery({ issuer: 'https://evil.example' });
    expect(await codeOf(fetchK8sJwks({ apiServer: api, fetch, clock, expectedIssuer: 'https://kubernetes.default.svc.cluster.local' }))).toMatch(/DISCOVERY_INVALID: .*evil\.example/);
    state.discovery = discovery({ jwks_uri: 'http://insecure.example/jwks' });
    expect(await codeOf(fetchK8sJwks({ apiServer: api, fetch, clock }))).toMatch(/DISCOVERY_INVALID: .*not https/);
    state.discovery = discovery({ issuer: undefined });
    expect(await codeOf(fetchK8sJwks({ apiServer: api, fetch, clock }))).toMatch(/issuer is missing/);
    state.discovery = discovery({ id_token_signing_alg_values_supported: ['RS256', 'none'] });
    expect(await codeOf(fetchK8sJwks({ apiServer: api, fetch, clock }))).toMatch(/"none"/);
  });

  test('refuses private, weak, malformed or empty key sets', () => {
    const code = (body: unknown) => {
      try {
        parseJwks(body);
        return 'accepted';
      } catch (e) {
        return isTesseraError(e) ? e.message : String(e);
      }
    };
    const rsaPrivate = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
    expect(code({ keys: [rsaPrivate] })).toMatch(/private member "d"/);
    expect(code({ keys: [generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' })] })).toMatch(/1024 bits/);
    expect(code({ keys: [{ kty: 'oct', k: 'c2VjcmV0' }] })).toMatch(/private member "k"/);
    expect(code({ keys: [{ kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'AAAA' }] })).toMatch(/not a usable public key/);
    expect(code({ keys: [{ ...ec, use: 'enc' }] })).toMatch(/use "enc"/);
    expect(code({ keys: [] })).toMatch(/empty/);
    expect(code({ keys: [ec] })).toBe('accepted');
  });
});

describe('TokenReview', () => {
  const review = (token: string, extra: Partial<Parameters<typeof reviewToken>[0]> = {}) =>
    reviewToken({ apiServer: api, fetch, callerToken: CALLER, token, audience: 'tessera', ...extra });

  test('a projected token bound to a live pod gives namespace, service account and pod', async () => {
    state.seen = [];
    const who = await review('good-token');
    expect(who).toEqual({
      namespace: 'shop',
      serviceAccount: 'web',
      serviceAccountUid: 'a8f1c2d4-0000-4000-8000-000000000001',
      podName: 'web-7d9f8',
      podUid: '5b1f0e8e-0000-4000-8000-000000000002',
      audiences: ['tessera'],
    });
    expect(kubernetesSpiffeId('cluster.local', who).toString()).toBe('spiffe://cluster.local/ns/shop/sa/web');
    const sent = JSON.parse(state.seen[0]!.body);
    expect(sent).toEqual({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: 'good-token', audiences: ['tessera'] } });
  });

  test('refusals: deleted pod, other audience, unbound token, non-service-account user, unknown token', async () => {
    expect(await codeOf(review('deleted-pod-token'))).toMatch(/TOKEN_REJECTED: .*not found/);
    expect(await codeOf(review('other-audience-token'))).toMatch(/TOKEN_REJECTED: .*audience "tessera"/);
    expect(await codeOf(review('unbound-token'))).toMatch(/TOKEN_REJECTED: .*not bound to a pod/);
    expect((await review('unbound-token', { requirePodBinding: false })).podName).toBeUndefined();
    expect(await codeOf(review('user-token'))).toMatch(/TOKEN_REJECTED: .*not belong to a service account/);
    expect(await codeOf(review('garbage'))).toMatch(/TOKEN_REJECTED/);
    expect(await codeOf(review('with space'))).toMatch(/TOKEN_REJECTED: the token is empty or malformed/);
  });

  test('transport failures are FETCH_FAILED and never echo the tokens', async () => {
    const msg = await codeOf(review('good-token', { callerToken: 'wrong' }));
    expect(msg).toMatch(/K8S_FETCH_FAILED: .*HTTP 401/);
    expect(msg).not.toContain('good-token');
    expect(msg).not.toContain('wrong');
    expect(await codeOf(review('good-token', { apiServer: 'https://localhost:1' }))).toMatch(/K8S_FETCH_FAILED/);
    const other = await servingPki(['localhost'], 'Some Other CA');
    expect(await codeOf(review('good-token', { fetch: createHttpsFetch({ caPem: other.caPem, code: K8S, timers: realTimers }) }))).toMatch(/K8S_FETCH_FAILED: .*(certificate|self.signed|issuer)/i);
  });
});

describe('https fetch limits', () => {
  test('http refused, slow answers time out, large answers are cut', async () => {
    expect(await codeOf(fetch('http://localhost/x', { method: 'GET' }))).toMatch(/only https/);
    const started = Date.now();
    expect(await codeOf(createHttpsFetch({ caPem: pki.caPem, timeoutMs: 200, code: K8S, timers: realTimers })(`${api}/slow`, { method: 'GET' }))).toMatch(/K8S_FETCH_FAILED: .*(200 ms)/);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await codeOf(createHttpsFetch({ caPem: pki.caPem, maxBodyBytes: 1000, code: K8S, timers: realTimers })(`${api}/big`, { method: 'GET' }))).toMatch(/larger than 1000 bytes/);
  });
});
