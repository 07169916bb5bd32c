// The Workload API's JWT calls on a real Unix socket with a plain proto-loader client: tokens cached per audience
// set until half their lifetime (then asked for again), a bundle stream that pushes a rotated key, validation
// that follows the bundle in force, and a control plane that cannot answer reported as UNAVAILABLE; audiences and
// tokens judged by the rules the control plane and the CLI apply.
import { type KeyObject, generateKeyPairSync, sign } from 'node:crypto';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { TesseraError } from '../../../../common/errors.js';
import { signJwtSvid } from '../../../../common/spiffe/jwt-svid.js';
import type { MintedJwtSvid } from '../../../../proxy/src/identity/control-plane-client.js';
import type { OwnBan } from '../../../../proxy/src/identity/control-plane-svid-source.js';
import { JwtBundleHolder } from '../../../../proxy/src/identity/jwt-bundle-holder.js';
import { WorkloadApiServer } from '../../../../proxy/src/workload-api/workload-api-server.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { REPO_ROOT, makeTempDir } from '../../../helpers/run.js';
import { highSTwin } from '../../../helpers/jwt-high-s.js';
import { systemClock } from '../../../../common/clock.js';
import { realTimers } from '../../../../shared-io/timers.js';

const ID = 'spiffe://example.org/ns/default/sa/api';
const k1 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const k2 = generateKeyPairSync('ec', { namedCurve: 'P-256' });

let tmp: { dir: string; cleanup: () => Promise<void> };
let server: WorkloadApiServer;
let client: grpc.Client & Record<string, (...a: unknown[]) => unknown>;
let time: FakeTime;
let holder: JwtBundleHolder;
let minted: string[][];
let failMint: boolean;
let calls: string[];
let revoked: Set<string>;
/** The ban the control plane refused the proxy's own SVID for (the identity source's view). */
let ownBan: OwnBan | undefined;
/** The control plane's refusal of the next mints (a ban it knows of before the proxy does). */
let mintRefusal: OwnBan | undefined;
/** Called when a mint is asked for, before it answers (a ban learnt while the answer travels). */
let onMint: () => void;
/** The control plane's clock minus this host's: its iat/exp are on its clock. */
let controlPlaneAheadMs: number;

function mint(audience: readonly string[]): Promise<MintedJwtSvid> {
  if (failMint) return Promise.reject(new TesseraError('TESSERA_ERR_IDENTITY_SIGN_FAILED', 'UNAVAILABLE: down', { grpcCode: grpc.status.UNAVAILABLE }));
  if (mintRefusal) return Promise.reject(new TesseraError('TESSERA_ERR_JWT_SVID_UNAVAILABLE', `PERMISSION_DENIED ${mintRefusal}: banned`, { grpcCode: grpc.status.PERMISSION_DENIED, controlPlaneCode: mintRefusal }));
  onMint();
  minted.push([...audience]);
  const now = time.nowMs() + controlPlaneAheadMs;
  const token = signJwtSvid({ privateKey: k1.privateKey, keyId: 'k1', spiffeId: ID, audience, issuedAtMs: now, expiresAtMs: now + 300_000 });
  return Promise.resolve({ token, spiffeId: ID, issuedAtMs: now, expiresAtMs: now + 300_000 });
}

const md = () => {
  const m = new grpc.Metadata();
  m.set('workload.spiffe.io', 'true');
  return m;
};
const unary = <T>(method: string, req: object) =>
  new Promise<{ err: grpc.ServiceError | null; res: T }>((ok) => client[method]!(req, md(), (err: grpc.ServiceError | null, res: T) => ok({ err, res })));
const fetchToken = async (audience: string[]) => (await unary<{ svids: { svid: string }[] }>('FetchJWTSVID', { audience })).res.svids[0]!.svid;

beforeEach(async () => {
  tmp = await makeTempDir();
  time = new FakeTime(Date.UTC(2026, 5, 1));
  holder = new JwtBundleHolder();
  holder.set(new Map([['example.org', new Map<string, KeyObject>([['k1', k1.publicKey]])]]));
  minted = [];
  failMint = false;
  calls = [];
  revoked = new Set();
  ownBan = undefined;
  mintRefusal = undefined;
  onMint = () => {};
  controlPlaneAheadMs = 0;
  server = await WorkloadApiServer.start({
    timers: realTimers, nowMs: systemClock.nowMs,
    socketPath: join(tmp.dir, 'wl.sock'),
    feed: { current: () => undefined, subscribe: () => () => {} },
    jwt: { mint, bundles: holder, ownId: () => ID, nowMs: () => time.nowMs(), revoked: (id) => revoked.has(id), ownBan: () => ownBan, onCall: (c, r, reason) => calls.push(`${c}/${r}/${reason}`) },
  });
  const def = protoLoader.loadSync('spiffe/workload/workload.proto', { includeDirs: [join(REPO_ROOT, 'proto')], keepCase: true, defaults: true });
  const Ctor = (grpc.loadPackageDefinition(def) as unknown as { SpiffeWorkloadAPI: grpc.ServiceClientConstructor }).SpiffeWorkloadAPI;
  client = new Ctor(`unix://${server.socketPath}`, grpc.credentials.createInsecure()) as never;
});

afterEach(async () => {
  client.close();
  await server.close();
  await tmp.cleanup();
});

test('a token is reused per audience set until half its lifetime, then fetched anew', async () => {
  const a = await fetchToken(['x', 'y']);
  expect(await fetchToken(['y', 'x', 'x'])).toBe(a);
  await fetchToken(['z']);
  expect(minted).toEqual([['x', 'y'], ['z']]);
  time.set(time.nowMs() + 149_000);
  expect(await fetchToken(['x', 'y'])).toBe(a);
  time.set(time.nowMs() + 1_000);
  const b = await fetchToken(['x', 'y']);
  expect(minted).toHaveLength(3);
  expect(b).not.toBe(a);
  expect(calls.filter((c) => c === 'fetch/ok/none')).toHaveLength(5);
});

test('a clock off the control plane\'s: a token is reused for half its lifetime from its arrival, by this clock', async () => {
  // Behind by 200 s (of a 300 s token): compared with iat/exp, it was handed out until 50 s past its exp.
  controlPlaneAheadMs = 200_000;
  const a = await fetchToken(['x']);
  time.set(time.nowMs() + 149_000);
  expect(await fetchToken(['x'])).toBe(a);
  time.set(time.nowMs() + 1_000);
  expect(await fetchToken(['x'])).not.toBe(a);
  // Ahead by 200 s: compared with iat/exp, every call asked the control plane for a new one.
  controlPlaneAheadMs = -200_000;
  const b = await fetchToken(['y']);
  time.set(time.nowMs() + 149_000);
  expect(await fetchToken(['y'])).toBe(b);
  expect(minted).toEqual([['x'], ['x'], ['y']]);
});

test('a control plane that cannot answer is UNAVAILABLE and counted as failed', async () => {
  failMint = true;
  const { err } = await unary('FetchJWTSVID', { audience: ['x'] });
  expect(err?.code).toBe(grpc.status.UNAVAILABLE);
  expect(calls).toEqual(['fetch/failed/unavailable']);
});

test('FetchJWTBundles pushes the new JWKS on a key rotation; validation follows the bundle in force', async () => {
  const token = await fetchToken(['x']);
  expect((await unary('ValidateJWTSVID', { audience: 'x', svid: token })).err).toBeNull();
  const stream = client['FetchJWTBundles']!({}, md()) as grpc.ClientReadableStream<{ bundles: Record<string, Buffer> }>;
  const seen: string[][] = [];
  stream.on('data', (m) => seen.push((JSON.parse(m.bundles['spiffe://example.org']!.toString()) as { keys: { kid: string }[] }).keys.map((k) => k.kid)));
  stream.on('error', () => {});
  const until = async (n: number) => {
    for (let i = 0; i < 100 && seen.length < n; i++) await new Promise((r) => setTimeout(r, 20));
  };
  await until(1);
  holder.set(new Map([['example.org', new Map<string, KeyObject>([['k1', k1.publicKey], ['k2', k2.publicKey]])]]));
  await until(2);
  // The same content again pushes nothing.
  holder.set(new Map([['example.org', new Map<string, KeyObject>([['k1', k1.publicKey], ['k2', k2.publicKey]])]]));
  holder.set(new Map([['example.org', new Map<string, KeyObject>([['k2', k2.publicKey]])]]));
  await until(3);
  stream.cancel();
  expect(seen).toEqual([['k1'], ['k1', 'k2'], ['k2']]);
  const { err } = await unary('ValidateJWTSVID', { audience: 'x', svid: token });
  expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
  expect(err?.details).toContain('TESSERA_ERR_JWT_SVID_UNKNOWN_KEY');
  expect(calls).toContain('validate/refused/unknown_key');
});

test('a valid token of a banned SPIFFE ID no longer validates (the proxy\'s deny-list)', async () => {
  const token = await fetchToken(['x']);
  expect((await unary('ValidateJWTSVID', { audience: 'x', svid: token })).err).toBeNull();
  revoked.add(ID);
  const { err } = await unary('ValidateJWTSVID', { audience: 'x', svid: token });
  expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
  expect(err?.details).toMatch(/^TESSERA_ERR_REVOCATION_ID_BANNED: .* is revoked/);
  expect(err?.metadata.get('tessera-error-code')).toEqual(['TESSERA_ERR_REVOCATION_ID_BANNED']);
  expect(calls.at(-1)).toBe('validate/refused/revoked');
});

test("once the proxy's own ID is banned, FetchJWTSVID hands out no token, not even one cached from before the ban", async () => {
  await fetchToken(['x']);
  revoked.add(ID);
  const { err } = await unary('FetchJWTSVID', { audience: ['x'] });
  expect(err?.code).toBe(grpc.status.PERMISSION_DENIED);
  expect(err?.metadata.get('tessera-error-code')).toEqual(['TESSERA_ERR_REVOCATION_ID_BANNED']);
  expect(calls.at(-1)).toBe('fetch/refused/revoked');
  expect(minted).toHaveLength(1);
  // Lifted: a fresh token, the cache having been dropped.
  revoked.clear();
  await fetchToken(['x']);
  expect(minted).toHaveLength(2);
});

test("the control plane refused the proxy's own SVID for an ID ban (its deny-list never names its own ID): no token, cached or new; its own tokens refused; lifted, a fresh one (audit 54b F6)", async () => {
  const before = await fetchToken(['x']);
  const other = signJwtSvid({ privateKey: k1.privateKey, keyId: 'k1', spiffeId: 'spiffe://example.org/ns/default/sa/other', audience: ['x'], issuedAtMs: time.nowMs(), expiresAtMs: time.nowMs() + 300_000 });
  ownBan = 'TESSERA_ERR_REVOCATION_ID_BANNED';
  for (const audience of [['x'], ['y']]) {
    const { err } = await unary('FetchJWTSVID', { audience });
    expect(err?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(err?.details).toMatch(/^TESSERA_ERR_REVOCATION_ID_BANNED: .* is revoked \(tessera revoke id\)/);
    expect(err?.metadata.get('tessera-error-code')).toEqual(['TESSERA_ERR_REVOCATION_ID_BANNED']);
    expect(calls.at(-1)).toBe('fetch/refused/revoked');
  }
  expect(minted).toHaveLength(1);
  const v = await unary('ValidateJWTSVID', { audience: 'x', svid: before });
  expect(v.err?.code).toBe(grpc.status.INVALID_ARGUMENT);
  expect(v.err?.metadata.get('tessera-error-code')).toEqual(['TESSERA_ERR_REVOCATION_ID_BANNED']);
  expect(calls.at(-1)).toBe('validate/refused/revoked');
  // Only the proxy's own ID: another ID's token validates.
  expect((await unary('ValidateJWTSVID', { audience: 'x', svid: other })).err).toBeNull();
  ownBan = undefined;
  expect(await fetchToken(['x'])).not.toBe(before);
  expect(minted).toHaveLength(2);
  expect((await unary('ValidateJWTSVID', { audience: 'x', svid: before })).err).toBeNull();
});

test("a serial ban of the proxy's own SVID: no token until another SVID, its code named; the ID's tokens still validate", async () => {
  const before = await fetchToken(['x']);
  ownBan = 'TESSERA_ERR_REVOCATION_SERIAL_BANNED';
  const { err } = await unary('FetchJWTSVID', { audience: ['x'] });
  expect(err?.code).toBe(grpc.status.PERMISSION_DENIED);
  expect(err?.details).toMatch(/^TESSERA_ERR_REVOCATION_SERIAL_BANNED: .*tessera revoke serial/);
  expect(err?.metadata.get('tessera-error-code')).toEqual(['TESSERA_ERR_REVOCATION_SERIAL_BANNED']);
  expect((await unary('ValidateJWTSVID', { audience: 'x', svid: before })).err).toBeNull();
  ownBan = undefined;
  expect(await fetchToken(['x'])).not.toBe(before);
});

test('a ban the control plane names in its refusal of the mint is said as that ban (PermissionDenied), not Unavailable', async () => {
  for (const code of ['TESSERA_ERR_REVOCATION_ID_BANNED', 'TESSERA_ERR_REVOCATION_SERIAL_BANNED'] as const) {
    mintRefusal = code;
    const { err } = await unary('FetchJWTSVID', { audience: ['x'] });
    expect(err?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(err?.details).toMatch(new RegExp(`^${code}: `));
    expect(err?.metadata.get('tessera-error-code')).toEqual([code]);
    expect(calls.at(-1)).toBe('fetch/refused/revoked');
  }
});

test('a token whose mint answered after the proxy learnt of its ban is not handed out, nor cached', async () => {
  onMint = () => {
    ownBan = 'TESSERA_ERR_REVOCATION_ID_BANNED';
  };
  const { err } = await unary('FetchJWTSVID', { audience: ['x'] });
  expect(err?.code).toBe(grpc.status.PERMISSION_DENIED);
  expect(minted).toHaveLength(1);
  onMint = () => {};
  ownBan = undefined;
  await fetchToken(['x']);
  expect(minted).toHaveLength(2);
});

test("a token of the proxy's own trust domain validates in its low-S spelling only; its high-S twin is malformed", async () => {
  const token = await fetchToken(['x']);
  expect((await unary('ValidateJWTSVID', { audience: 'x', svid: token })).err).toBeNull();
  const { err } = await unary('ValidateJWTSVID', { audience: 'x', svid: highSTwin(token) });
  expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
  expect(err?.details).toMatch(/^TESSERA_ERR_JWT_SVID_MALFORMED: .*low-S/);
});

test('every refusal decided before the validator carries its stable code, first in the message and in the metadata', async () => {
  const token = await fetchToken(['x']);
  const cases: [string, object, string][] = [
    ['ValidateJWTSVID', { audience: '', svid: token }, 'TESSERA_ERR_JWT_SVID_AUDIENCE_REQUIRED'],
    ['ValidateJWTSVID', { audience: 'x', svid: '' }, 'TESSERA_ERR_JWT_SVID_MALFORMED'],
    ['FetchJWTSVID', { audience: [] }, 'TESSERA_ERR_JWT_SVID_AUDIENCE_REQUIRED'],
    ['FetchJWTSVID', { audience: [''] }, 'TESSERA_ERR_JWT_SVID_AUDIENCE_REQUIRED'],
    ['FetchJWTSVID', { audience: [' a'] }, 'TESSERA_ERR_JWT_SVID_AUDIENCE_REQUIRED'],
    ['FetchJWTSVID', { audience: Array.from({ length: 17 }, (_, i) => `a${i}`) }, 'TESSERA_ERR_JWT_SVID_AUDIENCE_REQUIRED'],
    ['ValidateJWTSVID', { audience: 'y', svid: token }, 'TESSERA_ERR_JWT_SVID_WRONG_AUDIENCE'],
  ];
  for (const [method, req, code] of cases) {
    const { err } = await unary(method, req);
    const what = `${method} ${JSON.stringify(req).slice(0, 60)}`;
    expect(err?.code, what).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details.startsWith(`${code}: `), `${what}: ${err?.details}`).toBe(true);
    expect(err?.metadata.get('tessera-error-code'), what).toEqual([code]);
  }
  expect(minted).toEqual([['x']]);
});

test('an audience list the control plane would refuse is refused here, never sent: too many, too long, invisible characters', async () => {
  for (const audience of [Array.from({ length: 17 }, (_, i) => `a${i}`), ['x'.repeat(257)], ['bank\u200b'], ['\u202eknab'], ['api\u3164'], ['api\u2800'], ['api\ufe0f'], ['a\u2028b'], ['a\u034fpi'], ['api\u17b4'], ['a\u2065pi'], ['api\u{16FE4}'], ['api\ufff0'], ['api\u{E0080}']]) {
    const { err } = await unary('FetchJWTSVID', { audience });
    expect(err?.code, JSON.stringify(audience).slice(0, 40)).toBe(grpc.status.INVALID_ARGUMENT);
  }
  expect(minted).toEqual([]);
});

test('a new JWT bundle drops the cached tokens: one signed by a removed key is never handed out', async () => {
  const a = await fetchToken(['x']);
  holder.set(new Map([['example.org', new Map<string, KeyObject>([['k1', k1.publicKey], ['k2', k2.publicKey]])]]));
  const b = await fetchToken(['x']);
  expect(minted).toHaveLength(2);
  expect(b).not.toBe(a);
});

test('a FetchJWTSVID request whose audience runs past the end of the message, or is not UTF-8, is refused InvalidArgument, nothing minted (audit 24b F6, 27)', async () => {
  const raw = (body: Buffer) =>
    new Promise<grpc.ServiceError | null>((ok) => client.makeUnaryRequest('/SpiffeWorkloadAPI/FetchJWTSVID', (b: Buffer) => b, (b: Buffer) => b, body, md(), (err) => ok(err)));
  // audience "partner" declaring 40 bytes more than the message holds (protobufjs alone read "partner"); field 0;
  // "partner\xff" (protobufjs alone read "partner\ufffd").
  for (const body of [Buffer.concat([Buffer.from([0x0a, 7 + 40]), Buffer.from('partner')]), Buffer.from([0x02, 0x01, 0x00, 0x0a, 0x01, 0x78]), Buffer.concat([Buffer.from([0x0a, 8]), Buffer.from('partner'), Buffer.from([0xff])])]) {
    const err = await raw(body);
    expect(err?.code, body.toString('hex')).toBe(grpc.status.INVALID_ARGUMENT); // grpc-js alone answered INTERNAL
    expect(err?.details).toMatch(/^TESSERA_ERR_PROTO_MALFORMED: FetchJWTSVID: /);
  }
  expect(minted).toEqual([]);
  expect(await raw(Buffer.from([0x0a, 0x01, 0x78]))).toBeNull(); // well-formed: ["x"]
  expect(minted).toEqual([['x']]);
});

// Audit 38c I3: empty entries were dropped (["", "a"] got a token for ["a"]) where the control plane refuses them.
test('an empty audience among others is refused as the control plane refuses it, never dropped and sent', async () => {
  for (const audience of [['', 'a'], ['a', ''], ['', ''], ['a', '', 'b']]) {
    const { err } = await unary('FetchJWTSVID', { audience });
    expect(err?.code, JSON.stringify(audience)).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.metadata.get('tessera-error-code'), JSON.stringify(audience)).toEqual(['TESSERA_ERR_JWT_SVID_AUDIENCE_REQUIRED']);
  }
  expect(minted).toEqual([]);
  expect(calls.every((c) => c === 'fetch/refused/no_audience')).toBe(true);
});

// Audit 38c F4 and I1 through ValidateJWTSVID: tokens the trust domain's own key signed, refused for what they say.
test('ValidateJWTSVID refuses a reserved subject, an iat in the future or not a date, and whitespace around the token', async () => {
  const now = time.nowMs();
  const signed = (spiffeId: string, issuedAtMs = now) => signJwtSvid({ privateKey: k1.privateKey, keyId: 'k1', spiffeId, audience: ['x'], issuedAtMs, expiresAtMs: now + 300_000 });
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  // signJwtSvid writes a number; a string iat needs its own claims, signed with the same key.
  const stringIat = (() => {
    const input = `${b64({ alg: 'ES256', kid: 'k1', typ: 'JWT' })}.${b64({ sub: ID, aud: ['x'], exp: Math.floor(now / 1000) + 300, iat: 'yesterday' })}`;
    return `${input}.${sign('sha256', Buffer.from(input), { key: k1.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  })();
  const good = signed(ID);
  const cases: [string, string, string][] = [
    ['control plane ID', signed('spiffe://example.org/tessera/control-plane'), 'TESSERA_ERR_JWT_SVID_BAD_SUBJECT'],
    ['iat a year ahead', signed(ID, now + 365 * 86_400_000), 'TESSERA_ERR_JWT_SVID_NOT_YET_VALID'],
    ['iat a string', stringIat, 'TESSERA_ERR_JWT_SVID_MALFORMED'],
    ['leading space and trailing newline', ` ${good}\n`, 'TESSERA_ERR_JWT_SVID_MALFORMED'],
  ];
  for (const [what, svid, code] of cases) {
    const { err } = await unary('ValidateJWTSVID', { audience: 'x', svid });
    expect(err?.code, what).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.metadata.get('tessera-error-code'), what).toEqual([code]);
  }
  expect((await unary('ValidateJWTSVID', { audience: 'x', svid: good })).err).toBeNull();
});
