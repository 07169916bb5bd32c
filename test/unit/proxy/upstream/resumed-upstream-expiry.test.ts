// An upstream's SVID expires, and the outbound side stops trusting it even through TLS resumption (an outside
// audit: a resumed session skipped checkServerIdentity, so an upstream past its NotAfter stayed trusted for as long
// as it kept handing out tickets). Real TLS on loopback, the proxy's clock injected: a ticket is not offered past
// the upstream leaf's NotAfter (the full handshake then refuses the leaf as expired), a session that resumes across
// NotAfter is refused on secureConnect, and both count as the full-handshake failure would (reason `expired`).
// Every dialer that keeps tickets goes through the same mtlsConnect: the keep-alive pool's connector, the HTTP/2
// opener and the multiplexed transport's dialer.
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { systemClock } from '../../../../common/clock.js';
import { SpiffeId } from '../../../../common/spiffe/spiffe-id.js';
import { TrustBundle, TrustBundleSet } from '../../../../common/spiffe/trust-bundle.js';
import { IdentityStore } from '../../../../proxy/src/identity/identity-store.js';
import { MuxDialer } from '../../../../proxy/src/mux/mux-dialer.js';
import { createProxyRegistry, ProxyMetrics } from '../../../../proxy/src/telemetry/metrics.js';
import { createDenyList } from '../../../../proxy/src/tls/deny-list.js';
import { DenyListHolder } from '../../../../proxy/src/tls/deny-list-holder.js';
import { PeerVerifier } from '../../../../proxy/src/tls/peer-verify.js';
import { ClientContexts } from '../../../../proxy/src/tls/tls-contexts.js';
import { type MtlsDeps, type MtlsTarget, mtlsConnect, mtlsConnector, type SessionMemory } from '../../../../proxy/src/upstream/connectors.js';
import { mtlsH2Opener } from '../../../../proxy/src/upstream/mtls-h2-opener.js';
import { type MintedSvid, TestCa } from '../../../helpers/test-ca.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;

let ca: TestCa;
let api: MintedSvid;
let identity: IdentityStore;
let servers: tls.Server[] = [];

beforeAll(async () => {
  ca = await TestCa.create({ trustDomain: TD });
  api = await ca.mintSvid(API);
  const web = await ca.mintSvid(WEB);
  identity = new IdentityStore(systemClock);
  identity.update({ chain: web.chain, key: web.key, bundles: new TrustBundleSet([TrustBundle.parse(TD, ca.bundlePem())]), source: 'files' });
});

afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  servers = [];
});

/** An upstream presenting `api` that answers and closes each connection (so every request is a new handshake). */
async function upstream(version: tls.SecureVersion): Promise<number> {
  const server = tls.createServer({ cert: api.chainPem, key: api.keyPem, minVersion: version, maxVersion: version, ALPNProtocols: ['h2', 'http/1.1'] }, (s) => s.end('up'));
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return (server.address() as AddressInfo).port;
}

interface Harness {
  readonly deps: MtlsDeps;
  readonly target: MtlsTarget;
  readonly metrics: ProxyMetrics;
  /** The proxy's clock: the wall clock plus this. */
  skewMs: number;
}

function harness(port: number, alpn: readonly string[] = ['http/1.1']): Harness {
  const metrics = new ProxyMetrics(createProxyRegistry(), { defaultMetrics: false });
  const h: Harness = {
    metrics,
    skewMs: 0,
    target: { host: '127.0.0.1', port, expectedId: SpiffeId.parse(API), alpn },
    deps: {
      identity,
      contexts: new ClientContexts(),
      verifier: new PeerVerifier(),
      denyList: new DenyListHolder(),
      metrics,
      nowMs: () => Date.now() + h.skewMs,
      handshakeTimeoutMs: 5_000,
      direction: 'outbound',
    },
  };
  return h;
}

interface Dialed {
  readonly err: Error | null;
  readonly resumed: boolean;
  readonly retired?: (() => boolean) | undefined;
}

/** Any dialer's callback: mtlsConnect's, the pool's Connector, the HTTP/2 opener's. */
type DialDone = (err: Error | null, socket?: object, resumed?: boolean, retired?: () => boolean) => void;

/** Runs one dial; on success reads the connection to its end (so its session tickets arrive) before resolving. */
function dial(open: (cb: DialDone) => void): Promise<Dialed> {
  return new Promise((resolve) => {
    open((err, s, resumed, retired) => {
      if (err || !s) return resolve({ err: err ?? new Error('no socket'), resumed: false });
      const socket = s as tls.TLSSocket;
      const reused = resumed ?? socket.isSessionReused();
      socket.on('data', () => undefined);
      socket.on('error', () => undefined);
      socket.once('close', () => resolve({ err: null, resumed: reused, retired }));
    });
  });
}

/** Outbound handshake failures by reason, from the metrics registry. */
async function failures(h: Harness): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const line of (await h.metrics.registry.metrics()).split('\n')) {
    const m = /^tessera_tls_handshakes_total\{(.*)\} (\d+)$/.exec(line);
    if (!m || !m[1]!.includes('result="failure"')) continue;
    const reason = /reason="([a-z_]+)"/.exec(m[1]!)![1]!;
    out[reason] = (out[reason] ?? 0) + Number(m[2]);
  }
  return out;
}

const pastNotAfter = () => api.leaf.validToDate.getTime() + 1_000 - Date.now();

describe.each(['TLSv1.3', 'TLSv1.2'] as const)('%s', (version) => {
  test('mtlsConnect: a ticket is not offered once the upstream leaf has expired; the full handshake refuses it as expired', async () => {
    const h = harness(await upstream(version));
    const session: SessionMemory = {};
    const connect = (cb: Parameters<typeof mtlsConnect>[3]) => mtlsConnect(h.target, h.deps, session, cb);
    expect(await dial(connect)).toMatchObject({ err: null, resumed: false });
    expect(await dial(connect)).toMatchObject({ err: null, resumed: true });
    const remembered = session.peer;
    h.skewMs = pastNotAfter();
    const after = await dial(connect);
    expect(after.err).toMatchObject({ code: 'TESSERA_ERR_SVID_EXPIRED' });
    expect(session.ticket).toBeUndefined();
    expect(await failures(h)).toEqual({ expired: 1 });
    // The ticket was kept with the leaf it resumes (a resumed connection's new tickets too).
    expect(remembered).toEqual({ notBeforeMs: api.leaf.validFromDate.getTime(), notAfterMs: api.leaf.validToDate.getTime(), serial: api.leaf.serialNumber.toLowerCase() });
  });

  test('mtlsConnect: a session that resumes across NotAfter is refused on secureConnect, counted as expired', async () => {
    const h = harness(await upstream(version));
    const session: SessionMemory = {};
    const connect = (cb: Parameters<typeof mtlsConnect>[3]) => mtlsConnect(h.target, h.deps, session, cb);
    await dial(connect);
    // The ticket is offered while the leaf is valid; the clock passes NotAfter before the handshake completes.
    const straddling = dial((cb) => {
      connect(cb);
      h.skewMs = pastNotAfter();
    });
    const r = await straddling;
    expect(r.err).toMatchObject({ code: 'TESSERA_ERR_SVID_EXPIRED' });
    expect(r.err?.message).toContain('resumed a session');
    expect(session.ticket).toBeUndefined();
    expect(await failures(h)).toEqual({ expired: 1 });
  });

  test('mtlsConnect: a clock set back before NotBefore refuses a resumed session as not yet valid', async () => {
    const h = harness(await upstream(version));
    const session: SessionMemory = {};
    const connect = (cb: Parameters<typeof mtlsConnect>[3]) => mtlsConnect(h.target, h.deps, session, cb);
    await dial(connect);
    const r = await dial((cb) => {
      connect(cb);
      h.skewMs = api.leaf.validFromDate.getTime() - 60_000 - Date.now();
    });
    expect(r.err).toMatchObject({ code: 'TESSERA_ERR_SVID_NOT_YET_VALID' });
    expect(await failures(h)).toEqual({ not_yet_valid: 1 });
  });
});

test("a serial ban reaches a resumed session too (Node shows no peer certificate on one: the ticket's leaf is used)", async () => {
  const h = harness(await upstream('TLSv1.3'));
  const session: SessionMemory = {};
  const connect = (cb: Parameters<typeof mtlsConnect>[3]) => mtlsConnect(h.target, h.deps, session, cb);
  await dial(connect);
  expect(await dial(connect)).toMatchObject({ err: null, resumed: true });
  h.deps.denyList.set(createDenyList([], [api.leaf.serialNumber]));
  expect((await dial(connect)).err).toMatchObject({ code: 'TESSERA_ERR_REVOCATION_SERIAL_BANNED' });
  expect(await failures(h)).toEqual({ revoked: 1 });
});

describe('every dialer that keeps tickets', () => {
  test("the keep-alive pool's connector: refused after expiry, and a pooled connection is retired at the leaf's NotAfter", async () => {
    const h = harness(await upstream('TLSv1.3'));
    const connect = mtlsConnector(h.target, h.deps);
    const first = await dial(connect);
    const second = await dial(connect);
    expect(second).toMatchObject({ err: null, resumed: true });
    expect([first.retired?.(), second.retired?.()]).toEqual([false, false]);
    h.skewMs = pastNotAfter();
    expect([first.retired?.(), second.retired?.()]).toEqual([true, true]);
    expect((await dial(connect)).err).toMatchObject({ code: 'TESSERA_ERR_SVID_EXPIRED' });
    expect(await failures(h)).toEqual({ expired: 1 });
  });

  test('the HTTP/2 opener: refused after expiry, and a session on a resumed connection still learns when the leaf expires', async () => {
    const h = harness(await upstream('TLSv1.3'));
    const opener = mtlsH2Opener(h.target, h.deps);
    const open = (cb: DialDone) => opener((err, socket, peerExpired) => cb(err, socket, undefined, peerExpired));
    expect(await dial(open)).toMatchObject({ err: null, resumed: false });
    const resumed = await dial(open);
    expect(resumed).toMatchObject({ err: null, resumed: true });
    // What H2Upstream retires the session by: Node shows no peer certificate on a resumed connection.
    expect(resumed.retired?.()).toBe(false);
    h.skewMs = pastNotAfter();
    expect(resumed.retired?.()).toBe(true);
    expect((await dial(open)).err).toMatchObject({ code: 'TESSERA_ERR_SVID_EXPIRED' });
    expect(await failures(h)).toEqual({ expired: 1 });
  });

  test("the multiplexed transport's dialer (a peer without the transport: its first connection is handed over)", async () => {
    const h = harness(await upstream('TLSv1.3'));
    const mux = new MuxDialer(h.target, h.deps, { keepaliveIntervalMs: 60_000, keepaliveTimeoutMs: 60_000, idleTimeoutMs: 60_000, metrics: h.metrics.mux });
    expect(await dial(mux.connect)).toMatchObject({ err: null, resumed: false });
    // Past NotAfter (and the dialer's memory that the peer has no transport): the dialer's own ticket is not
    // offered, and the full handshake refuses the expired leaf.
    h.skewMs = pastNotAfter();
    expect((await dial(mux.connect)).err).toMatchObject({ code: 'TESSERA_ERR_SVID_EXPIRED' });
    expect(await failures(h)).toEqual({ expired: 1 });
    mux.close();
  });
});

test("a kept-alive connection is retired at this proxy's own NotAfter too, when it comes before the upstream's", async () => {
  // An own SVID that expired unrenewed: the connection made with it takes no new request (a new handshake
  // would present the expired certificate and be refused), while the upstream's leaf is still valid.
  const web = await ca.mintSvid(WEB, { notBefore: new Date(Date.now() - 60_000), notAfter: new Date(api.leaf.validToDate.getTime() - 120_000) });
  const own = new IdentityStore(systemClock);
  own.update({ chain: web.chain, key: web.key, bundles: new TrustBundleSet([TrustBundle.parse(TD, ca.bundlePem())]), source: 'files' });
  const h = harness(await upstream('TLSv1.3'));
  const connect = mtlsConnector(h.target, { ...h.deps, identity: own });
  const first = await dial(connect);
  expect(first).toMatchObject({ err: null });
  expect(first.retired?.()).toBe(false);
  h.skewMs = web.leaf.validToDate.getTime() + 1_000 - Date.now();
  expect(first.retired?.()).toBe(true);
});
