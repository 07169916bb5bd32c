// The control plane's real parts, assembled in-process for unit tests: a store and a CA in a temp data dir, and
// the gRPC API (Identity, Config) on 127.0.0.1 port 0, all on one injected clock. No process, no mocks.

import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { type Clock, systemClock } from '../../common/clock.js';
import { rsaKeyWeakness } from '../../common/pki/rsa-key-strength.js';
import type { AuthorizationPolicy, BreakGlassGrant } from '../../common/policy/policy-types.js';
import { TrustDomain } from '../../common/spiffe/trust-domain.js';
import { ConfigHub } from '../../control-plane/src/api/config-service.js';
import { GrpcServer } from '../../control-plane/src/api/grpc-server.js';
import { guardedService } from '../../control-plane/src/api/guarded-service.js';
import { identityHandlers } from '../../control-plane/src/api/identity-service.js';
import { sharedResponseEncoding } from '../../control-plane/src/api/shared-encoding.js';
import { JoinTokenAttestor } from '../../control-plane/src/attestation/join-token-attestor.js';
import { SvidAttestor } from '../../control-plane/src/attestation/svid-attestor.js';
import type { CaLifetimes } from '../../control-plane/src/ca/authority.js';
import { filePersistence } from '../../control-plane/src/ca/authority-persistence.js';
import { AuthorityStore } from '../../control-plane/src/ca/authority-store.js';
import { type CaEvent, CaManager } from '../../control-plane/src/ca/ca-manager.js';
import { Issuer } from '../../control-plane/src/issuance/issuer.js';
import { type RateLimit, RateLimiter } from '../../control-plane/src/issuance/rate-limiter.js';
import { Revocations } from '../../control-plane/src/issuance/revocations.js';
import { ServedIdentity } from '../../control-plane/src/issuance/served-identity.js';
import { openSqliteStore } from '../../control-plane/src/store/sqlite/open-sqlite-store.js';
import type { ControlPlaneStore } from '../../control-plane/src/store/store-contract.js';
import { loadTesseraServices } from '../../shared-io/proto-loader.js';
import { realTimers } from '../../shared-io/timers.js';
import { TD } from './control-plane.js';
import { makeTempDir } from './run.js';

/** For a failure no test expects (a background reload): thrown again, so the run reports it as unhandled. */
export const loud = (e: unknown): void => {
  throw e;
};

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;
export const TEST_LIFETIMES: CaLifetimes = { rootTtlMs: 365 * DAY_MS, intermediateTtlMs: 30 * DAY_MS };

export interface TestCaParts {
  readonly store: ControlPlaneStore;
  readonly ca: CaManager;
  /** Every CA event, in the order onChange saw them. */
  readonly events: CaEvent[];
}

/** The CA over `<dataDir>/ca` with the store beside it; live SVIDs are counted from the store's inventory. */
export async function openTestCa(dataDir: string, clock: Clock, lifetimes: CaLifetimes = TEST_LIFETIMES): Promise<TestCaParts> {
  const store = await openSqliteStore(dataDir);
  const events: CaEvent[] = [];
  const ca = await CaManager.open({
    store: filePersistence(new AuthorityStore({ dir: join(dataDir, 'ca') })),
    trustDomain: TrustDomain.parse(TD),
    lifetimes,
    clock,
    liveSvids: (id, now) => store.inventory.liveByAuthority(id, now),
    onChange: (_s, e) => events.push(...e),
  });
  return { store, ca, events };
}

export interface RunningApi extends TestCaParts {
  readonly server: GrpcServer;
  readonly hub: ConfigHub;
  readonly revocations: Revocations;
  readonly served: ServedIdentity;
  /** Refusals before the issuer (oversized, undecodable), as the handler reported them. */
  readonly rejected: { code: string; size: number | undefined }[];
  /** Config/Watch snapshots written so far (ConfigHub's onSent). */
  readonly snapshotsSent: () => number;
  /** Config/Watch snapshots built so far (one per SPIFFE ID and version), and the policies and grants they looked at (ConfigHub's onBuild). */
  readonly snapshotBuilds: () => { builds: number; examined: number };
  /** PEM bundle a client trusts the server with. */
  bundlePem(): string;
  close(): Promise<void>;
}

export interface ApiOptions {
  readonly maxRequestBytes?: number;
  readonly headersTimeoutMs?: number;
  readonly handshakeTimeoutMs?: number;
  /** The gRPC port's connection cap (default 64). */
  readonly maxConnections?: number;
  readonly onTlsFailure?: (reason: string) => void;
  /** The gRPC port's HTTP/2 and call refusals (floods, unfinished messages, unknown methods). */
  readonly onRejected?: (reason: string) => void;
  readonly maxStreamsPerId?: number;
  /** Config/Watch opens per SPIFFE ID a second once the burst is spent (limits.streamOpensPerSecond). */
  readonly streamOpensPerSecond?: number;
  /** The policies Config/Watch serves (default none). */
  readonly policies?: () => readonly AuthorizationPolicy[];
  /** The break-glass grants Config/Watch serves (default none). */
  readonly grants?: () => readonly BreakGlassGrant[];
  /** Config/Watch opens per SPIFFE ID (default streamOpenRate(), stream-caller.ts). */
  readonly openRate?: RateLimit;
  /** The clock SignSvid's caller-gone check reads deadlines on (default systemClock, grpc-js's). */
  readonly deadlineClock?: Clock;
}

/** Identity and Config served by the real GrpcServer, wired as control-plane/src/main.ts wires them. */
export async function startTestApi(dataDir: string, clock: Clock, o: ApiOptions = {}): Promise<RunningApi> {
  const parts = await openTestCa(dataDir, clock);
  const { store, ca } = parts;
  const td = TrustDomain.parse(TD);
  const svids = new SvidAttestor(() => ca.current().bundle, clock);
  let hub: ConfigHub | undefined;
  const revocations = await Revocations.open({ store: store.revocations, tokens: store.tokens, inventory: store.inventory, audit: store.audit, trustDomain: td, clock, onChange: () => void hub?.publish(), announce: () => void store.changes.announce('revocations'), onReloadFailed: loud });
  const issuer = new Issuer({
    trustDomain: td,
    ca: () => ca.current(),
    svid: { ttlMs: HOUR_MS, maxTtlMs: DAY_MS, backdateMs: 60_000 },
    joinTokens: new JoinTokenAttestor(store.tokens, clock),
    svids,
    revocations,
    limiter: new RateLimiter({ burst: 1_000, perMinute: 1_000 }, clock),
    inventory: store.inventory,
    audit: store.audit,
    clock,
    keyWeakness: async (key) => rsaKeyWeakness(key),
  });
  const served = await ServedIdentity.open(issuer, td, HOUR_MS, () => ca.current(), clock);
  const maxRequestBytes = o.maxRequestBytes ?? 64 * 1024;
  const server = new GrpcServer({
    listen: '127.0.0.1:0',
    identity: served.credentials(),
    handshakeTimeoutMs: o.handshakeTimeoutMs ?? 10_000,
    headersTimeoutMs: o.headersTimeoutMs ?? 10_000,
    maxConnections: o.maxConnections ?? 64,
    maxReceiveBytes: maxRequestBytes * 4,
    timers: realTimers,
    nowMs: systemClock.nowMs,
    ...(o.onTlsFailure ? { onTlsFailure: o.onTlsFailure } : {}),
    ...(o.onRejected ? { onRejected: o.onRejected } : {}),
  });
  let sent = 0;
  const builds = { builds: 0, examined: 0 };
  const services = loadTesseraServices();
  hub = await ConfigHub.open({
    inputs: { bundles: () => [ca.current().bundle], policies: o.policies ?? (() => []), grants: o.grants ?? (() => []), denyList: () => revocations.denyList() },
    svids,
    admit: (id, serial) => revocations.check(id, serial),
    peerChain: (call) => server.chainOf(call),
    clock,
    nextVersion: () => store.meta.increment('config.snapshot_version'),
    onSent: () => void sent++,
    onBuild: (examined) => {
      builds.builds++;
      builds.examined += examined;
    },
    encode: services.config.service['Watch']!.responseSerialize,
    ...(o.maxStreamsPerId !== undefined ? { maxStreamsPerId: o.maxStreamsPerId } : {}),
    ...(o.streamOpensPerSecond !== undefined ? { streamOpensPerSecond: o.streamOpensPerSecond } : {}),
    ...(o.openRate ? { openRate: o.openRate } : {}),
  });
  const rejected: { code: string; size: number | undefined }[] = [];
  server.addService(guardedService(services.identity.service, maxRequestBytes), identityHandlers({ issuer, peerChain: (call) => server.chainOf(call), onRejected: (code, _c, size) => rejected.push({ code, size }), deadlineClock: o.deadlineClock ?? systemClock }));
  server.addService(sharedResponseEncoding(guardedService(services.config.service, maxRequestBytes)), hub.handlers());
  await server.start();
  const h = hub;
  return {
    ...parts,
    server,
    hub: h,
    revocations,
    served,
    rejected,
    snapshotsSent: () => sent,
    snapshotBuilds: () => ({ ...builds }),
    bundlePem: () => ca.current().bundle.toPem(),
    close: async () => {
      h.endAll();
      await server.stop(0);
      await h.settled();
      await store.close();
    },
  };
}

/** One API for every test of a file (started before the first, closed after the last): `const t = apiPerFile(time)`. */
export function apiPerFile(clock: Clock, o: ApiOptions = {}): { readonly api: RunningApi } {
  let running: RunningApi | undefined;
  let cleanup: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    const tmp = await makeTempDir();
    cleanup = tmp.cleanup;
    running = await startTestApi(tmp.dir, clock, o);
  });
  afterAll(async () => {
    await running?.close();
    await cleanup?.();
  });
  return {
    get api(): RunningApi {
      if (!running) throw new Error('apiPerFile: used outside a test');
      return running;
    },
  };
}
