// The peer's leaf read from a real TLS session (server side, loopback): the leaf a client presented in a full
// handshake, TLS 1.3 and 1.2, and again in a resumed one; nothing for a client without a certificate; the
// serialized session zeroed after the read; mutated sessions never throw and never yield bytes that are not one
// whole DER element; and PeerVerifier serves a known peer from it without reading the chain the peer sent.
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readNode } from '../../../../common/pki/der.js';
import { TrustBundle, TrustBundleSet } from '../../../../common/spiffe/trust-bundle.js';
import type { IdentitySnapshot } from '../../../../proxy/src/identity/identity-snapshot.js';
import { type PeerSocket, PeerVerifier } from '../../../../proxy/src/tls/peer-verify.js';
import { sessionLeafHash, sessionPeerDer } from '../../../../proxy/src/tls/session-peer.js';
import { serverSecureOptions } from '../../../../proxy/src/tls/tls-contexts.js';
import { applyAll, mutations } from '../../../helpers/der-mutations.js';
import { fuzzParams, fuzzTimeoutMs } from '../../../helpers/fuzz-params.js';
import { type MintedSvid, TestCa } from '../../../helpers/test-ca.js';

const TD = 'example.org';
const WEB = `spiffe://${TD}/ns/default/sa/web`;

let ca: TestCa;
let server: tls.Server;
let web: MintedSvid;
let snapshot: IdentitySnapshot;
/** Run on the server side of each finished handshake, before the socket is answered. */
let onSecure: (socket: tls.TLSSocket) => void = () => {};

beforeAll(async () => {
  ca = await TestCa.create({ trustDomain: TD });
  const api = await ca.mintSvid(`spiffe://${TD}/ns/default/sa/api`);
  web = await ca.mintSvid(WEB);
  snapshot = { generation: 1, chainPem: api.chainPem, keyPem: api.keyPem, bundles: new TrustBundleSet([TrustBundle.parse(TD, ca.bundlePem())]) } as unknown as IdentitySnapshot;
  // The proxy's own inbound options (client certificate requested, no OpenSSL anchors), TLS 1.2 allowed.
  server = tls.createServer(serverSecureOptions(snapshot, Buffer.alloc(48, 7), '1.2', []), (socket) => {
    onSecure(socket);
    socket.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

/** One connection; resolves with the TLS session the client can resume, once the server has closed it. */
function connect(opts: tls.ConnectionOptions): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    let ticket: Buffer | undefined;
    const s = tls.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, rejectUnauthorized: false, ...opts });
    s.on('session', (t: Buffer) => {
      ticket = t;
    });
    s.on('data', () => {});
    s.on('error', () => resolve(ticket));
    s.on('close', () => resolve(ticket));
    s.setTimeout(5_000, () => s.destroy());
  });
}

/** The server-side sessions of the next connection made with `opts`, read in the handshake's callback. */
async function serverSession(opts: tls.ConnectionOptions): Promise<{ session: Buffer | undefined; resumed: boolean; ticket: Buffer | undefined }> {
  let seen: { session: Buffer | undefined; resumed: boolean } = { session: undefined, resumed: false };
  onSecure = (socket) => {
    seen = { session: socket.getSession(), resumed: socket.isSessionReused() };
  };
  const ticket = await connect(opts);
  onSecure = () => {};
  return { ...seen, ticket };
}

const withCert = (svid: MintedSvid): tls.ConnectionOptions => ({ cert: svid.chainPem, key: svid.keyPem });

describe('sessionPeerDer', () => {
  test('a full TLS 1.3 handshake: the leaf the client presented (not its intermediate)', async () => {
    const { session, resumed } = await serverSession(withCert(web));
    expect(resumed).toBe(false);
    expect(web.chain.length).toBeGreaterThan(1);
    expect(Buffer.from(sessionPeerDer(session!)!).equals(web.leaf.raw)).toBe(true);
  });

  test('TLS 1.2, and a resumed TLS 1.3 session: the same leaf', async () => {
    const v12 = await serverSession({ ...withCert(web), maxVersion: 'TLSv1.2' });
    expect(Buffer.from(sessionPeerDer(v12.session!)!).equals(web.leaf.raw)).toBe(true);
    const first = await serverSession(withCert(web));
    const again = await serverSession({ ...withCert(web), session: first.ticket! });
    expect(again.resumed).toBe(true);
    expect(Buffer.from(sessionPeerDer(again.session!)!).equals(web.leaf.raw)).toBe(true);
  });

  test('a client without a certificate: nothing', async () => {
    const { session } = await serverSession({});
    expect(session).toBeDefined();
    expect(sessionPeerDer(session!)).toBeUndefined();
  });

  test('not a session: nothing, never a throw', () => {
    for (const b of [Buffer.alloc(0), Buffer.from([0x30]), Buffer.from([0x30, 0x05, 0xa3, 0x03, 0x02, 0x01, 0x00]), Buffer.from([0x04, 0x00]), web.leaf.raw]) {
      expect(sessionPeerDer(b)).toBeUndefined();
    }
  });

  test(
    'mutated real sessions never throw; what they yield is one whole DER SEQUENCE',
    async () => {
      const { session } = await serverSession(withCert(web));
      fc.assert(
        fc.property(mutations, (ms) => {
          const der = sessionPeerDer(applyAll(Buffer.from(session!), ms));
          if (der === undefined) return;
          const node = readNode(der, 0);
          expect(node.tag).toBe(0x30);
          expect(node.end).toBe(der.length);
        }),
        fuzzParams(20260512, 300),
      );
    },
    fuzzTimeoutMs(),
  );
});

describe('sessionLeafHash', () => {
  test("SHA-256 of the leaf, as VerifiedPeer.leafHash; the session's bytes are zeroed after the read", async () => {
    const { session } = await serverSession(withCert(web));
    const held = Buffer.from(session!);
    expect(sessionLeafHash({ getSession: () => held })).toBe(createHash('sha256').update(web.leaf.raw).digest('hex'));
    expect(held.every((b) => b === 0)).toBe(true);
    expect(sessionLeafHash({ getSession: () => undefined })).toBeUndefined();
  });
});

describe('PeerVerifier.verifySocket on real sockets', () => {
  /** Verifies each connection's peer, counting the reads of the chain the peer sent. */
  async function verified(v: PeerVerifier, opts: tls.ConnectionOptions): Promise<{ result: ReturnType<PeerVerifier['verifySocket']>; chainReads: number; ticket: Buffer | undefined }> {
    let out: { result: ReturnType<PeerVerifier['verifySocket']>; chainReads: number } | undefined;
    onSecure = (socket) => {
      let chainReads = 0;
      const counted: PeerSocket = {
        getSession: () => socket.getSession(),
        isSessionReused: () => socket.isSessionReused(),
        getPeerCertificate: (detailed: true) => {
          chainReads++;
          return socket.getPeerCertificate(detailed);
        },
      };
      const result = v.verifySocket(counted, snapshot, Date.now());
      out = { result, chainReads };
    };
    const ticket = await connect(opts);
    onSecure = () => {};
    return { ...out!, ticket };
  }

  test('first contact reads the chain; a resumed session is served from the session, the chain not read', async () => {
    const v = new PeerVerifier();
    const first = await verified(v, withCert(web));
    expect(first.result.ok && first.result.idText).toBe(WEB);
    expect(first.chainReads).toBe(1);
    const resumed = await verified(v, { ...withCert(web), session: first.ticket! });
    expect(resumed.result).toBe(first.result);
    expect(resumed.chainReads).toBe(0);
  });

  test('a full handshake with a known leaf: the chain it sent is read and compared, the verified peer reused', async () => {
    const v = new PeerVerifier();
    const first = await verified(v, withCert(web));
    const again = await verified(v, withCert(web));
    expect(again.result).toBe(first.result);
    expect(again.chainReads).toBe(1);
  });

  test('the same leaf sent again with an unrelated extra certificate is the same peer: the extra is dropped before the check', async () => {
    const v = new PeerVerifier();
    expect((await verified(v, withCert(web))).result.ok).toBe(true);
    const stranger = await TestCa.create({ trustDomain: TD, rootName: 'CN=Stranger' });
    const withExtra = { cert: web.chainPem + stranger.intermediate.cert.toString(), key: web.keyPem };
    const extra = await verified(v, withExtra);
    expect(extra.result.ok && extra.result.idText).toBe(WEB);
    expect(extra.chainReads).toBe(1);
    // The clean chain still passes, served from the cache.
    expect((await verified(v, withCert(web))).result.ok).toBe(true);
  });

  test('another leaf with the same SPIFFE ID is verified on its own, keyed by its own hash', async () => {
    const v = new PeerVerifier();
    const a = await verified(v, withCert(web));
    const other = await ca.mintSvid(WEB);
    const b = await verified(v, withCert(other));
    expect(b.chainReads).toBe(1);
    expect(b.result.ok && b.result.leafHash).toBe(createHash('sha256').update(other.leaf.raw).digest('hex'));
    expect(a.result.ok && a.result.leafHash).toBe(createHash('sha256').update(web.leaf.raw).digest('hex'));
  });

  test('a client without a certificate is refused', async () => {
    const r = await verified(new PeerVerifier(), {});
    expect(r.result).toMatchObject({ ok: false, reason: 'no_client_cert' });
  });
});
