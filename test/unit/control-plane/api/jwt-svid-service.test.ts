// Identity/MintJwtSvid over the control plane's real TLS gRPC front, with client SVIDs minted by a test CA, real
// JWT signing keys and the real SQLite audit: a workload gets a token for its own ID; a leaf naming an ID renewal
// refuses (the control plane's own, the bare trust domain, another trust domain) gets no token either, with the
// same code and status renewal gives, audited and counted.
import * as grpc from '@grpc/grpc-js';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { TesseraError } from '../../../../common/errors.js';
import { TrustBundle } from '../../../../common/spiffe/trust-bundle.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { GrpcServer } from '../../../../control-plane/src/api/grpc-server.js';
import { guardedService } from '../../../../control-plane/src/api/guarded-service.js';
import { jwtSvidHandlers } from '../../../../control-plane/src/api/jwt-svid-service.js';
import { checkAudience } from '../../../../common/spiffe/jwt-audience.js';
import { SvidAttestor } from '../../../../control-plane/src/attestation/svid-attestor.js';
import { openJwtKeys } from '../../../../control-plane/src/ca/open-jwt-keys.js';
import { openSqliteStore } from '../../../../control-plane/src/store/sqlite/open-sqlite-store.js';
import type { ControlPlaneStore } from '../../../../control-plane/src/store/store-contract.js';
import { loadTesseraServices } from '../../../../shared-io/proto-loader.js';
import { CONTROL_PLANE_ID, controlPlaneClients, errorCode } from '../../../helpers/control-plane.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { makeTempDir } from '../../../helpers/run.js';
import { TestCa } from '../../../helpers/test-ca.js';
import { systemClock } from '../../../../common/clock.js';
import { realTimers } from '../../../../shared-io/timers.js';

const WEB = 'spiffe://example.org/ns/default/sa/web';
const STORED_BAN = 'spiffe://example.org/ns/default/sa/banned-elsewhere';
const T0 = Math.floor(Date.now() / 1000) * 1000;

describe('Identity/MintJwtSvid', () => {
  const time = new FakeTime(T0);
  const td = TrustDomain.parse('example.org');
  const refused: string[] = [];
  const takes: string[] = [];
  let ca: TestCa;
  let store: ControlPlaneStore;
  let server: GrpcServer;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    const tmp = await makeTempDir();
    cleanup = tmp.cleanup;
    ca = await TestCa.create({ nowMs: T0 });
    store = await openSqliteStore(tmp.dir);
    const own = await ca.mintSvid(CONTROL_PLANE_ID);
    server = new GrpcServer({ listen: '127.0.0.1:0', identity: { certChainPem: own.chainPem, keyPem: own.keyPem, clientCasPem: ca.bundlePem() }, handshakeTimeoutMs: 5_000, headersTimeoutMs: 5_000, maxConnections: 16, maxReceiveBytes: 4 * 65_536, timers: realTimers, nowMs: systemClock.nowMs });
    const jwt = await openJwtKeys({ dataDir: tmp.dir, clock: time, audit: store.audit, log: { info: () => {}, warn: () => {} }, onChange: () => {} });
    const handlers = jwtSvidHandlers({
      trustDomain: td,
      svids: new SvidAttestor(() => TrustBundle.parse(td, ca.bundlePem()), time),
      peerChain: (call) => server.chainOf(call),
      admit: () => {},
      // As a ban committed on another replica: only the store knows it (Revocations.checkStored).
      admitStored: async (id) => {
        if (id === STORED_BAN) throw new TesseraError('TESSERA_ERR_REVOCATION_ID_BANNED', undefined, { spiffeId: id });
      },
      take: (key) => {
        takes.push(key);
        return true;
      },
      signingKey: () => jwt.keys.active(),
      audit: store.audit,
      clock: time,
      onIssued: () => {},
      onRefused: (code) => refused.push(code),
    });
    const identity = loadTesseraServices().identity.service;
    server.addService(guardedService({ MintJwtSvid: identity['MintJwtSvid']! }, 65_536), handlers);
    await server.start();
  });
  afterAll(async () => {
    await server?.stop(0);
    await store?.close();
    await cleanup?.();
  });

  /** MintJwtSvid with the client SVID `id` minted by `by` (the test CA unless said). */
  async function mint(id: string, by: TestCa = ca, ttlSeconds = 0, audience: readonly string[] = ['payments']): Promise<{ err: grpc.ServiceError | null; token?: string }> {
    const svid = await by.mintSvid(id);
    const c = controlPlaneClients(server.address, ca.bundlePem(), { keyPem: svid.keyPem, chainPem: svid.chainPem });
    try {
      return await new Promise((resolve) => {
        c.identity.MintJwtSvid!({ audience, ttl_seconds: ttlSeconds }, { deadline: Date.now() + 5_000 }, (err: grpc.ServiceError | null, res?: { token: string }) => resolve({ err, ...(res ? { token: res.token } : {}) }));
      });
    } finally {
      c.close();
    }
  }

  test('an ID banned in the store but not yet in this replica\'s memory gets no token', async () => {
    const r = await mint(STORED_BAN);
    expect(r.err?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(errorCode(r.err)).toBe('TESSERA_ERR_REVOCATION_ID_BANNED');
    expect(refused.at(-1)).toBe('TESSERA_ERR_REVOCATION_ID_BANNED');
  });

  test('a shorter lifetime may be asked, never a longer one than the default 5 minutes', async () => {
    const span = (t: string) => {
      const c = decodeJwt(t) as { exp: number; iat: number };
      return c.exp - c.iat;
    };
    expect(span((await mint(WEB, ca, 3_600)).token!)).toBe(300);
    expect(span((await mint(WEB, ca, 60)).token!)).toBe(60);
  });

  test('the rate limit is per caller SVID (one pod), not per ID: two replicas of one ID draw from two buckets', async () => {
    takes.length = 0;
    await mint(WEB);
    await mint(WEB);
    expect(takes).toHaveLength(2);
    expect(takes[0]).not.toBe(takes[1]);
    expect(takes.every((k) => k.startsWith(`jwt:${WEB}:`))).toBe(true);
  });

  test('the jwt_svid.issued row keeps the audience count and the first 4 audiences cut to 64 characters, not the whole list', async () => {
    // The largest list allowed: 16 audiences of 256 bytes (a 4.4 KB row each before).
    const audience = Array.from({ length: 16 }, (_, i) => `aud-${i}-${'a'.repeat(245)}`);
    const r = await mint(WEB, ca, 0, audience);
    expect(decodeJwt(r.token!).aud).toEqual(audience);
    await store.audit.flush();
    const row = (await store.audit.recent('jwt_svid.issued', 1))[0]!;
    expect(row['audienceCount']).toBe(16);
    expect(row['audience']).toEqual(audience.slice(0, 4).map((a) => `${a.slice(0, 63)}…`));
    expect(JSON.stringify(row).length).toBeLessThan(1_000);
  });

  test("a workload's SVID gets a token whose sub is its own ID", async () => {
    const r = await mint(WEB);
    expect(r.err).toBeNull();
    expect(decodeJwt(r.token!).sub).toBe(WEB);
  });

  test("a leaf naming the control plane's own ID gets no token: PERMISSION_DENIED, TESSERA_ERR_ISSUANCE_RESERVED_ID, audited, counted", async () => {
    refused.length = 0;
    const r = await mint(CONTROL_PLANE_ID);
    expect(r.token).toBeUndefined();
    expect([r.err?.code, errorCode(r.err)]).toEqual([grpc.status.PERMISSION_DENIED, 'TESSERA_ERR_ISSUANCE_RESERVED_ID']);
    expect(refused).toEqual(['TESSERA_ERR_ISSUANCE_RESERVED_ID']);
    await store.audit.flush();
    const lines = await store.audit.recent('jwt_svid.', 10);
    expect(lines.some((l) => l['event'] === 'jwt_svid.refused' && l['code'] === 'TESSERA_ERR_ISSUANCE_RESERVED_ID' && l['spiffeId'] === CONTROL_PLANE_ID)).toBe(true);
    expect(lines.some((l) => l['event'] === 'jwt_svid.issued' && l['spiffeId'] === CONTROL_PLANE_ID)).toBe(false);
  });

  test('the bare trust-domain ID and another trust domain get no token either (their leaves do not even verify, as for renewal)', async () => {
    const bare = await mint('spiffe://example.org');
    expect(bare.token).toBeUndefined();
    expect([bare.err?.code, errorCode(bare.err)]).toEqual([grpc.status.UNAUTHENTICATED, 'TESSERA_ERR_ATTESTATION_SVID_INVALID']);
    const other = await mint('spiffe://other.org/ns/default/sa/web', await TestCa.create({ trustDomain: 'other.org', nowMs: T0 }));
    expect(other.token).toBeUndefined();
    expect([other.err?.code, errorCode(other.err)]).toEqual([grpc.status.UNAUTHENTICATED, 'TESSERA_ERR_ATTESTATION_SVID_INVALID']);
    // The audit row keeps why, as renewal's does (audit 36a F2: it had the code only).
    await store.audit.flush();
    const rows = (await store.audit.recent('jwt_svid.refused', 10)).filter((l) => l['code'] === 'TESSERA_ERR_ATTESTATION_SVID_INVALID');
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((l) => typeof l['reason'] === 'string')).toBe(true);
  });
});

describe('audiences a relying party can compare and log', () => {
  test('control characters, U+FFFD (invalid UTF-8 decoded), spaces at either end and empty ones are refused', () => {
    for (const bad of ['a\u0000b', 'a\nb', 'a\rb', '\u0085x', 'x\u007f', '\uFFFD', ' a', 'a ', ' ', '']) {
      expect(() => checkAudience([bad]), JSON.stringify(bad)).toThrow(expect.objectContaining({ code: 'TESSERA_ERR_JWT_SVID_AUDIENCE_REQUIRED' }));
    }
  });

  test('URLs, SPIFFE IDs, inner spaces and other scripts pass; duplicates are merged', () => {
    expect(checkAudience(['https://bank.example/api', 'spiffe://example.org/ns/a/sa/b', 'a b', '日本', 'bank', 'bank'])).toEqual(['https://bank.example/api', 'spiffe://example.org/ns/a/sa/b', 'a b', '日本', 'bank']);
  });
});
