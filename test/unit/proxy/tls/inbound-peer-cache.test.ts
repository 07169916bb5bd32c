// The inbound per-handshake path with real TLS sockets on loopback: the client SVID read with
// getPeerCertificate(true) (its chain included) and verified once, then served from PeerVerifier's cache; a rotation
// checks it again, a CA dropped from the bundle refuses it, a banned serial refuses it while cached, and the cache
// stays within its bound. The server runs with the proxy's own options (serverSecureOptions: no OpenSSL anchors).
import type { DetailedPeerCertificate } from 'node:tls';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { systemClock } from '../../../../common/clock.js';
import { TrustBundle, TrustBundleSet } from '../../../../common/spiffe/trust-bundle.js';
import { IdentityStore } from '../../../../proxy/src/identity/identity-store.js';
import { InboundGate } from '../../../../proxy/src/listeners/inbound-gate.js';
import type { ListenerDeps } from '../../../../proxy/src/listeners/listener-deps.js';
import { createDenyList } from '../../../../proxy/src/tls/deny-list.js';
import { PeerVerifier, type VerifiedPeer } from '../../../../proxy/src/tls/peer-verify.js';
import { serverSecureOptions } from '../../../../proxy/src/tls/tls-contexts.js';
import { listenerDeps } from '../../../helpers/listener-deps.js';
import { type MintedSvid, TestCa } from '../../../helpers/test-ca.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;

interface Harness {
  readonly ca: TestCa;
  readonly deps: ListenerDeps;
  readonly identity: IdentityStore;
  readonly server: tls.Server;
  /** What the gate decided for each connection, in order (null: refused). */
  readonly admitted: (VerifiedPeer | null)[];
}

let h: Harness;

async function harness(): Promise<Harness> {
  const ca = await TestCa.create({ trustDomain: TD });
  const api = await ca.mintSvid(API);
  const identity = new IdentityStore(systemClock);
  const bundles = new TrustBundleSet([TrustBundle.parse(TD, ca.bundlePem())]);
  identity.update({ chain: api.chain, key: api.key, bundles, source: 'files' });
  const deps: ListenerDeps = { ...listenerDeps(), identity };
  const gate = new InboundGate(deps, 'app');
  const admitted: (VerifiedPeer | null)[] = [];
  const server = tls.createServer(serverSecureOptions(identity.current!, deps.ticketKeys.current, '1.3', []), (socket) => {
    const r = gate.admit(socket);
    admitted.push(r?.peer ?? null);
    if (r) socket.end('ok');
  });
  identity.subscribe((s) => server.setSecureContext(serverSecureOptions(s, deps.ticketKeys.current, '1.3', [])));
  gate.timeHandshakes(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { ca, deps, identity, server, admitted };
}

/** One connection with `svid` (full handshake, no ticket); resolves when the server has closed it. */
function connectWith(svid: MintedSvid): Promise<void> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port: (h.server.address() as AddressInfo).port, cert: svid.chainPem, key: svid.keyPem, rejectUnauthorized: false });
    s.on('data', () => {});
    s.on('error', () => resolve());
    s.on('close', () => resolve());
    s.setTimeout(5_000, () => s.destroy());
  });
}

beforeEach(async () => {
  h = await harness();
});
afterEach(() => new Promise<void>((r) => h.server.close(() => r())));

describe('inbound peer verification over real TLS', () => {
  test('first contact verifies the chain the peer sent; the next handshake is served from the cache', async () => {
    const web = await h.ca.mintSvid(WEB);
    await connectWith(web);
    await connectWith(web);
    expect(h.admitted).toHaveLength(2);
    expect(h.admitted[0]?.idText).toBe(WEB);
    expect(h.admitted[1]).toBe(h.admitted[0]); // the cached verification, not a new one
    expect(h.admitted[0]?.serial.toLowerCase()).toBe(web.leaf.serialNumber.toLowerCase());
    const text = await h.deps.metrics.registry.metrics();
    expect(text).toMatch(/^tessera_tls_handshake_duration_seconds_count\{direction="inbound"\} 2$/m);
  });

  test('a rotation (new identity generation) verifies the peer again', async () => {
    const web = await h.ca.mintSvid(WEB);
    await connectWith(web);
    const next = await h.ca.mintSvid(API);
    h.identity.update({ chain: next.chain, key: next.key, bundles: h.identity.current!.bundles, source: 'files' });
    await connectWith(web);
    expect(h.admitted[1]?.idText).toBe(WEB);
    expect(h.admitted[1]).not.toBe(h.admitted[0]);
  });

  test('a CA dropped from the bundle refuses a peer the cache had verified', async () => {
    const web = await h.ca.mintSvid(WEB);
    await connectWith(web);
    const other = await TestCa.create({ trustDomain: TD });
    const api2 = await other.mintSvid(API);
    h.identity.update({ chain: api2.chain, key: api2.key, bundles: new TrustBundleSet([TrustBundle.parse(TD, other.bundlePem())]), source: 'files' });
    await connectWith(web);
    expect(h.admitted).toEqual([expect.objectContaining({ idText: WEB }), null]);
  });

  test('a banned serial is refused while its verification is cached; lifting the ban admits it again', async () => {
    const web = await h.ca.mintSvid(WEB);
    await connectWith(web);
    h.deps.denyList.set(createDenyList([], [web.leaf.serialNumber]));
    await connectWith(web);
    h.deps.denyList.set(createDenyList([], []));
    await connectWith(web);
    expect(h.admitted.map((p) => p?.idText ?? null)).toEqual([WEB, null, WEB]);
    const text = await h.deps.metrics.registry.metrics();
    expect(text).toMatch(/^tessera_tls_handshakes_total\{direction="inbound",result="failure",reason="revoked",resumed="false"\} 1$/m);
  });

  test('a banned SPIFFE ID is refused while cached', async () => {
    const web = await h.ca.mintSvid(WEB);
    await connectWith(web);
    h.deps.denyList.set(createDenyList([WEB], []));
    await connectWith(web);
    expect(h.admitted.map((p) => p?.idText ?? null)).toEqual([WEB, null]);
  });

  test('an unrelated extra certificate in the sent chain is dropped before the check (Node links issuers only)', async () => {
    const stranger = await TestCa.create({ trustDomain: TD, rootName: 'CN=Stranger' });
    const web = await h.ca.mintSvid(WEB, { extraChain: [stranger.intermediate.cert] });
    await connectWith(web);
    expect(h.admitted.map((p) => p?.idText ?? null)).toEqual([WEB]);
  });
});

describe('PeerVerifier cache bound', () => {
  /** The socket shape verifySocket reads: a leaf with its sent chain linked through issuerCertificate. */
  const socketOf = (svid: MintedSvid) => {
    let next: DetailedPeerCertificate | undefined;
    for (let i = svid.chain.length - 1; i >= 0; i--) next = { raw: svid.chain[i]!.raw, fingerprint256: svid.chain[i]!.fingerprint256, issuerCertificate: next } as unknown as DetailedPeerCertificate;
    // No session to read: the path through the certificates (session-peer.test.ts covers the session's).
    return { getSession: () => undefined, isSessionReused: () => false, getPeerCertificate: () => next ?? ({} as DetailedPeerCertificate) };
  };

  test('at most maxEntries peers are held; an evicted peer is verified again, a held one is not', async () => {
    const snapshot = h.identity.current!;
    const peers = await Promise.all([1, 2, 3].map((i) => h.ca.mintSvid(`spiffe://${TD}/ns/default/sa/p${i}`)));
    const v = new PeerVerifier({ maxEntries: 2 });
    const first = peers.map((p) => v.verifySocket(socketOf(p), snapshot, Date.now()));
    expect(first.every((r) => r.ok)).toBe(true);
    expect(v.size).toBe(2);
    expect(v.verifySocket(socketOf(peers[2]!), snapshot, Date.now())).toBe(first[2]); // held
    const again = v.verifySocket(socketOf(peers[0]!), snapshot, Date.now()); // evicted first
    expect(again.ok).toBe(true);
    expect(again).not.toBe(first[0]);
    expect(v.size).toBe(2);
  });

  test('no certificate → no_client_cert', () => {
    const r = new PeerVerifier().verifySocket({ getSession: () => undefined, isSessionReused: () => false, getPeerCertificate: () => ({}) as DetailedPeerCertificate }, h.identity.current!, Date.now());
    expect(r).toMatchObject({ ok: false, reason: 'no_client_cert' });
  });
});
