// JWT-SVIDs end to end with real processes: a control plane and an attested proxy serving the Workload API (and
// nothing else: no listener, the SVID-only sidecar); a
// generic Workload API client (the public proto + grpc-js, nothing of Tessera's) fetches a JWT-SVID, validates it
// through ValidateJWTSVID, reads the JWT bundle; `jose` verifies it independently against bundle.spiffe.json; the
// CLI fetches and verifies one; refusals carry their code and are counted; no token text reaches the audit log; the
// Workload API and the CLI give one verdict for hostile tokens signed with the domain's real key. `svid verify --jwt`
// runs through the built binary for its first cases of each test, in-process (runCli) for the rest.
import { createPrivateKey, sign } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { decodeProtectedHeader, importJWK, type JWK, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { tesseraInProcess } from '../helpers/cli-in-process.js';
import { controlPlaneClients, createJoinToken, errorCode, type RunningControlPlane, startControlPlaneProcess, TD, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { highSTwin, isLowS } from '../helpers/jwt-high-s.js';
import { metricsText, sumSeries } from '../helpers/prom-metrics.js';
import { type ProxyProcess, startAttestedProxy } from '../helpers/proxy-process.js';
import { makeTempDir, tessera } from '../helpers/run.js';
import { connectWorkloadApi, type JwtSvidsMsg, unaryCall, type WorkloadApi, workloadMetadata } from '../helpers/workload-api-client.js';

const API = `spiffe://${TD}/ns/default/sa/api`;
let cleanup: () => Promise<void>;
let dir: string;
let cp: RunningControlPlane;
let api: ProxyProcess;

let wl: WorkloadApi;
const fetchJwt = (req: object) => wl.fetchJwt(req);
const validate = (audience: string, svid: string) => wl.validate(audience, svid);

/** Verifies with jose alone against the published document: the jwt-svid key named by the token's kid. */
async function joseVerify(token: string, audience: string) {
  const doc = JSON.parse(await readFile(join(cp.dataDir, 'bundle.spiffe.json'), 'utf8')) as { keys: (JWK & { use: string })[] };
  const { kid } = decodeProtectedHeader(token);
  const jwk = doc.keys.find((k) => k.use === 'jwt-svid' && k.kid === kid);
  if (!jwk) throw new Error(`kid ${kid} is not published`);
  const { use: _use, ...params } = jwk;
  return jwtVerify(token, await importJWK(params, 'ES256'), { audience, algorithms: ['ES256'] });
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  cp = await startControlPlaneProcess(dir, await writeControlPlaneConfig(dir));
  // No listener at all: a sidecar that only serves its SVID to the app (what an injected pod without port
  // annotations runs) attests and serves the Workload API like any other.
  api = await startAttestedProxy(cp, dir, 'api', API, 'workloadApi: { socket: api.sock }\n');
  wl = connectWorkloadApi(join(dir, 'api.sock'));
}, 90_000);

afterAll(async () => {
  wl?.client.close();
  await api?.stop();
  await cp?.stop();
  await cleanup?.();
});

describe('the SPIFFE bundle document', () => {
  test('bundle.spiffe.json: x509-svid keys with x5c, a jwt-svid key with kid, a sequence and a refresh hint; keys 0600', async () => {
    const path = join(cp.dataDir, 'bundle.spiffe.json');
    const doc = JSON.parse(await readFile(path, 'utf8')) as { keys: Record<string, unknown>[]; spiffe_sequence: number; spiffe_refresh_hint: number };
    expect(doc.keys.filter((k) => k['use'] === 'x509-svid').every((k) => Array.isArray(k['x5c']) && (k['x5c'] as string[]).length === 1)).toBe(true);
    expect(doc.keys.filter((k) => k['use'] === 'x509-svid').length).toBeGreaterThanOrEqual(1);
    const jwtKeys = doc.keys.filter((k) => k['use'] === 'jwt-svid');
    expect(jwtKeys).toHaveLength(1);
    expect(jwtKeys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', kid: expect.any(String) });
    expect(jwtKeys[0]!['d']).toBeUndefined();
    expect(doc.spiffe_sequence).toBeGreaterThanOrEqual(1);
    expect(doc.spiffe_refresh_hint).toBe(300);
    expect((await stat(path)).mode & 0o777).toBe(0o644);
    expect((await stat(join(cp.dataDir, 'jwt', `${jwtKeys[0]!['kid']}.key.pem`))).mode & 0o777).toBe(0o600);
  });
});

describe('the Workload API serves JWT-SVIDs', () => {
  test('FetchJWTSVID → a token for the proxy\'s ID that ValidateJWTSVID and jose both accept', async () => {
    const { err, res } = await fetchJwt({ audience: ['svc-a', 'svc-b'] });
    expect(err).toBeNull();
    expect(res.svids).toHaveLength(1);
    expect(res.svids[0]!.spiffe_id).toBe(API);
    const token = res.svids[0]!.svid;
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'ES256', typ: 'JWT', kid: expect.any(String) });

    const v = await validate('svc-b', token);
    expect(v.err).toBeNull();
    expect(v.res.spiffe_id).toBe(API);
    expect(v.res.claims.fields['sub']!.stringValue).toBe(API);
    expect(v.res.claims.fields['aud']!.listValue!.values.map((x) => x.stringValue)).toEqual(['svc-a', 'svc-b']);

    const { payload } = await joseVerify(token, 'svc-a');
    expect(payload.sub).toBe(API);
    expect(payload.exp! - payload.iat!).toBe(300);

    // Cached until half its lifetime: the same token again.
    expect((await fetchJwt({ audience: ['svc-b', 'svc-a'] })).res.svids[0]!.svid).toBe(token);
  });

  test('FetchJWTBundles streams a JWKS for the trust domain holding the key of the tokens', async () => {
    const token = (await fetchJwt({ audience: ['svc-a'] })).res.svids[0]!.svid;
    const stream = wl.client.FetchJWTBundles({}, workloadMetadata());
    const first = await new Promise<{ bundles: Record<string, Buffer> }>((ok, fail) => {
      stream.once('data', ok);
      stream.once('error', fail);
    });
    stream.cancel();
    const jwks = JSON.parse(first.bundles[`spiffe://${TD}`]!.toString()) as { keys: { kid: string }[] };
    expect(jwks.keys.map((k) => k.kid)).toContain(decodeProtectedHeader(token).kid);
  });

  test('refusals: no audience, another ID, wrong audience, alg none, HMAC, garbage — each coded and counted', async () => {
    expect((await fetchJwt({ audience: [] })).err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect((await fetchJwt({ audience: ['x'], spiffe_id: `spiffe://${TD}/ns/default/sa/admin` })).err?.code).toBe(grpc.status.PERMISSION_DENIED);
    const token = (await fetchJwt({ audience: ['svc-a'] })).res.svids[0]!.svid;
    const [h, c] = token.split('.') as [string, string];
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const cases: [string, string][] = [
      ['wrong_audience', token],
      ['alg_not_allowed', `${b64({ alg: 'none', kid: decodeProtectedHeader(token).kid })}.${c}.`],
      ['alg_not_allowed', `${b64({ alg: 'HS256', kid: decodeProtectedHeader(token).kid })}.${c}.${Buffer.alloc(32).toString('base64url')}`],
      ['malformed', `${h}.${c}`],
      ['bad_signature', `${h}.${b64({ ...JSON.parse(Buffer.from(c, 'base64url').toString()), sub: `spiffe://${TD}/ns/default/sa/admin` })}.${token.split('.')[2]}`],
    ];
    for (const [reason, svid] of cases) {
      const r = await validate('other-audience', svid);
      expect(r.err?.code, reason).toBe(grpc.status.INVALID_ARGUMENT);
      expect(r.err?.details, reason).toContain(`TESSERA_ERR_JWT_SVID_${reason.toUpperCase()}`);
    }
    const text = await metricsText(api.admin);
    expect(sumSeries(text, 'tessera_workload_api_jwt_calls_total', { call: 'validate', result: 'refused', reason: 'wrong_audience' })).toBe(1);
    expect(sumSeries(text, 'tessera_workload_api_jwt_calls_total', { call: 'validate', result: 'refused', reason: 'alg_not_allowed' })).toBe(2);
    expect(sumSeries(text, 'tessera_workload_api_jwt_calls_total', { call: 'fetch', result: 'refused', reason: 'foreign_id' })).toBe(1);
    // Every call is counted as it opens, by method and outcome, the X.509 ones too.
    expect(sumSeries(text, 'tessera_workload_api_calls_total', { method: 'FetchJWTSVID' })).toBeGreaterThan(0);
  });

  test('without the security header every JWT call is refused', async () => {
    const r = await unaryCall<JwtSvidsMsg>((cb) => wl.client.FetchJWTSVID({ audience: ['x'] }, new grpc.Metadata(), cb));
    expect(r.err?.code).toBe(grpc.status.INVALID_ARGUMENT);
  });
});

describe('the control plane signs only for a caller proven by its client SVID', () => {
  test('MintJwtSvid without a client certificate is UNAUTHENTICATED', async () => {
    const clients = controlPlaneClients(cp.grpc, await readFile(join(cp.dataDir, 'bundle.pem'), 'utf8'));
    try {
      const r = await unaryCall<unknown>((cb) => clients.identity.MintJwtSvid!({ audience: ['x'] }, { deadline: Date.now() + 10_000 }, cb));
      expect(r.err?.code).toBe(grpc.status.UNAUTHENTICATED);
      // No certificate at all, as renewal and the streams tell it (before 2026-12-06 SVID_INVALID; audit 35a F3).
      expect(errorCode(r.err)).toBe('TESSERA_ERR_ATTESTATION_NO_EVIDENCE');
    } finally {
      clients.close();
    }
  });

  test('every issuance is audited, without the token text; issuances are counted', async () => {
    const token = (await fetchJwt({ audience: ['audit-me'] })).res.svids[0]!.svid;
    const audit = await readFile(join(cp.dataDir, 'audit.log'), 'utf8');
    const issued = audit.split('\n').filter((l) => l.includes('"jwt_svid.issued"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(issued.some((e) => e['spiffeId'] === API && (e['audience'] as string[]).includes('audit-me') && e['kid'] === decodeProtectedHeader(token).kid)).toBe(true);
    expect(audit).not.toContain(token.split('.')[2]);
    expect(audit).not.toContain(token.split('.')[1]);
    const cpMetrics = await (await fetch(`http://${cp.admin}/metrics`)).text();
    expect(sumSeries(cpMetrics, 'tessera_jwt_svids_issued_total')).toBeGreaterThanOrEqual(3);
    expect(sumSeries(cpMetrics, 'tessera_jwt_svid_refusals_total', { code: 'TESSERA_ERR_ATTESTATION_NO_EVIDENCE' })).toBeGreaterThanOrEqual(1);
  });
});

describe('the CLI', () => {
  test('svid fetch --jwt prints the JWT alone; svid verify --jwt accepts it and refuses another audience', async () => {
    const id = `spiffe://${TD}/batch/report`;
    // The token through admin.sock (`token create` has tests of its own); the fetch is this test's command.
    const fetched = await tessera(['svid', 'fetch', '--control-plane', cp.grpc, '--bundle', join(cp.dataDir, 'bundle.pem'), '--join-token', await createJoinToken(cp.dataDir, id), '--jwt', '--audience', 'queue', '--audience', 'gateway']);
    expect(fetched.code, fetched.stderr).toBe(0);
    const token = fetched.stdout.trim();
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect((await joseVerify(token, 'gateway')).payload.sub).toBe(id);

    const bundle = join(cp.dataDir, 'bundle.spiffe.json');
    const ok = await tessera(['svid', 'verify', '--jwt', '--bundle', bundle, '--audience', 'queue', token]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ valid: true, spiffeId: id, reason: null });

    const bad = await tessera(['svid', 'verify', '--jwt', '--bundle', bundle, '--audience', 'elsewhere', token]);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ valid: false, spiffeId: id, reason: 'wrong_audience', code: 'TESSERA_ERR_JWT_SVID_WRONG_AUDIENCE' });

    const late = await tesseraInProcess(['svid', 'verify', '--jwt', '--bundle', bundle, '--audience', 'queue', '--at', String(Math.floor(Date.now() / 1000) + 3600), token]);
    expect(JSON.parse(late.stdout)).toMatchObject({ valid: false, reason: 'expired' });

    // The high-S twin (r, n − s) of the token: the second spelling of it, refused as ValidateJWTSVID refuses it;
    // --any-s takes it (a token of an issuer that signs either S).
    const twin = highSTwin(token);
    const highS = await tesseraInProcess(['svid', 'verify', '--jwt', '--bundle', bundle, '--audience', 'queue', twin]);
    expect(highS.code).toBe(1);
    expect(JSON.parse(highS.stdout)).toMatchObject({ valid: false, reason: 'malformed', code: 'TESSERA_ERR_JWT_SVID_MALFORMED' });
    const anyS = await tesseraInProcess(['svid', 'verify', '--jwt', '--bundle', bundle, '--audience', 'queue', '--any-s', twin]);
    expect(JSON.parse(anyS.stdout)).toMatchObject({ valid: true, spiffeId: id });

    const usage = await tessera(['svid', 'verify', '--jwt', '--bundle', bundle, token]);
    expect(usage.code).toBe(2);
  });
});

/** A token signed with the trust domain's real JWT key (read from the data dir): only its claims make it bad. */
async function signedByDomain(claims: Record<string, unknown>): Promise<string> {
  const kid = (await readdir(join(cp.dataDir, 'jwt'))).find((f) => f.endsWith('.key.pem'))!.replace('.key.pem', '');
  const key = createPrivateKey(await readFile(join(cp.dataDir, 'jwt', `${kid}.key.pem`), 'utf8'));
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${b64({ alg: 'ES256', kid, typ: 'JWT' })}.${b64(claims)}`;
  const token = `${input}.${sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  // Signed as Tessera signs (a low S): this trust domain's high-S spellings are refused on their own account.
  return isLowS(token) ? token : highSTwin(token);
}

// Audit 38c F4, I1, I2: the Workload API (over its socket, on a real proxy) and `tessera svid verify --jwt` (the
// built binary, or its runCli in-process) give one verdict, with one code, for the same string.
describe('ValidateJWTSVID and svid verify --jwt judge a token alike', () => {
  test('a reserved subject, an iat ahead or not a date, whitespace around the token: refused by both with the same code; the control token valid in both', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { sub: API, aud: ['q'], exp: now + 240, iat: now };
    const good = await signedByDomain(claims);
    const cases: [string, string, string | null][] = [
      ['control', good, null],
      ['sub the control plane ID', await signedByDomain({ ...claims, sub: `spiffe://${TD}/tessera/control-plane` }), 'TESSERA_ERR_JWT_SVID_BAD_SUBJECT'],
      ['sub the bare trust domain', await signedByDomain({ ...claims, sub: `spiffe://${TD}` }), 'TESSERA_ERR_JWT_SVID_BAD_SUBJECT'],
      ['iat a year ahead', await signedByDomain({ ...claims, iat: now + 365 * 86_400 }), 'TESSERA_ERR_JWT_SVID_NOT_YET_VALID'],
      ['iat a string', await signedByDomain({ ...claims, iat: 'yesterday' }), 'TESSERA_ERR_JWT_SVID_MALFORMED'],
      ['nbf a string', await signedByDomain({ ...claims, nbf: 'x' }), 'TESSERA_ERR_JWT_SVID_MALFORMED'],
      ['a space before, a newline after', ` ${good}\n`, 'TESSERA_ERR_JWT_SVID_MALFORMED'],
      ['a trailing newline', `${good}\n`, 'TESSERA_ERR_JWT_SVID_MALFORMED'],
    ];
    const bundle = join(cp.dataDir, 'bundle.spiffe.json');
    for (const [i, [what, svid, code]] of cases.entries()) {
      const wlAnswer = await validate('q', svid);
      // The control and the first refusal through the binary, the other cases in-process (the same runCli).
      const cli = await (i < 2 ? tessera : tesseraInProcess)(['svid', 'verify', '--jwt', '--bundle', bundle, '--audience', 'q', svid]);
      const verdict = JSON.parse(cli.stdout) as { valid: boolean; code: string | null };
      if (code === null) {
        expect(wlAnswer.err, what).toBeNull();
        expect(verdict, what).toMatchObject({ valid: true });
        expect(cli.code, what).toBe(0);
      } else {
        expect(wlAnswer.err?.code, what).toBe(grpc.status.INVALID_ARGUMENT);
        expect(wlAnswer.err?.metadata.get('tessera-error-code'), what).toEqual([code]);
        expect(verdict, what).toMatchObject({ valid: false, code });
        expect(cli.code, what).toBe(1);
      }
    }
  });

  // Audit 62d F2: claims nested 50 levels deep (signed by the domain's own key) failed INTERNAL with no code when the
  // answer was written, after the call had been counted ok.
  test('ValidateJWTSVID of a token whose claims nest past 32 levels: refused TESSERA_ERR_JWT_SVID_MALFORMED, counted as such', async () => {
    const now = Math.floor(Date.now() / 1000);
    let nested: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 50; i++) nested = { n: nested };
    const token = await signedByDomain({ sub: API, aud: ['q'], exp: now + 240, iat: now, deep: nested });
    const counted = async (result: string, reason: string) => sumSeries(await metricsText(api.admin), 'tessera_workload_api_jwt_calls_total', { call: 'validate', result, reason });
    const [okBefore, malformedBefore] = [await counted('ok', 'none'), await counted('refused', 'malformed')];
    const answer = await validate('q', token);
    expect(answer.err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(answer.err?.metadata.get('tessera-error-code')).toEqual(['TESSERA_ERR_JWT_SVID_MALFORMED']);
    expect([(await counted('ok', 'none')) - okBefore, (await counted('refused', 'malformed')) - malformedBefore]).toEqual([0, 1]);
  });

  // Audit 38c I3: ["", "a"] got a token for ["a"]; the control plane refuses an empty entry, so the proxy does.
  test('FetchJWTSVID with an empty audience among others is refused, as the control plane refuses it', async () => {
    const before = sumSeries(await metricsText(api.admin), 'tessera_workload_api_jwt_calls_total', { call: 'fetch', result: 'refused', reason: 'no_audience' });
    for (const audience of [['', 'a'], ['a', '']]) {
      const r = await fetchJwt({ audience });
      expect(r.err?.code, JSON.stringify(audience)).toBe(grpc.status.INVALID_ARGUMENT);
      expect(r.err?.metadata.get('tessera-error-code'), JSON.stringify(audience)).toEqual(['TESSERA_ERR_JWT_SVID_AUDIENCE_REQUIRED']);
    }
    const after = sumSeries(await metricsText(api.admin), 'tessera_workload_api_jwt_calls_total', { call: 'fetch', result: 'refused', reason: 'no_audience' });
    expect(after - before).toBe(2);
  });
});
