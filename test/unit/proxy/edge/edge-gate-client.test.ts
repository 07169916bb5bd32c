// EdgeGate.client over a real mTLS connection (loopback): every request of a connection asks who the client is,
// and the answer is built from the connection's certificate once — the leaf read once per connection, the chain
// once per leaf — while a ban is still checked on every request; the chain is read with getPeerCertificate(true),
// never Node's X509 reader, which leaks the certificates after the leaf (audit 51b F1): an unrelated extra
// certificate is dropped by Node before the check.
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { encodePem } from '../../../../common/pki/pem.js';
import { TrustBundle, TrustBundleSet } from '../../../../common/spiffe/trust-bundle.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import type { EdgeConfig } from '../../../../proxy/src/config/edge-config.js';
import type { EdgeCertificates } from '../../../../proxy/src/edge/edge-certificates.js';
import { EdgeGate, isFailure } from '../../../../proxy/src/edge/edge-gate.js';
import { createDenyList } from '../../../../proxy/src/tls/deny-list.js';
import { listenerDeps } from '../../../helpers/listener-deps.js';
import { type MintedSvid, TestCa } from '../../../helpers/test-ca.js';

const PARTNER_ID = 'spiffe://partner.example/billing';

let mesh: TestCa;
let partner: TestCa;
let client: MintedSvid;
let server: tls.Server;
let serverSide: Promise<tls.TLSSocket>;
let clientSide: tls.TLSSocket;

beforeAll(async () => {
  mesh = await TestCa.create({ trustDomain: 'example.org' });
  partner = await TestCa.create({ trustDomain: 'partner.example', rootName: 'CN=Partner CA' });
  client = await partner.mintSvid(PARTNER_ID);
  const edgeCert = await mesh.mintSvid('spiffe://example.org/ns/edge/sa/edge');
  server = tls.createServer({ cert: edgeCert.chainPem, key: edgeCert.keyPem, ca: partner.bundlePem(), requestCert: true, rejectUnauthorized: false });
  serverSide = new Promise((r) => server.once('secureConnection', r));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  clientSide = tls.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, cert: client.chainPem, key: client.keyPem, rejectUnauthorized: false });
  clientSide.on('error', () => {});
});
afterAll(() => {
  clientSide.destroy();
  return new Promise<void>((r) => server.close(() => r()));
});

function gate() {
  const d = listenerDeps();
  const own = mesh.mintSvid('spiffe://example.org/ns/edge/sa/edge');
  return own.then((svid) => {
    d.identity.update({ chain: svid.chain, key: svid.key, bundles: new TrustBundleSet([TrustBundle.parse('example.org', mesh.bundlePem())]), source: 'files' });
    const config = { name: 'edge', clientCa: '/partner.pem', clientTrustDomain: TrustDomain.parse('partner.example'), clientCert: 'required', authorize: false, trustedProxies: [], routes: [], hstsMaxAge: 0 } as unknown as EdgeConfig;
    const certs = { generation: 1, clientAuthorities: [partner.root.cert] } as unknown as EdgeCertificates;
    return { d, gate: new EdgeGate(config, d, certs) };
  });
}

describe('EdgeGate.client', () => {
  test('the client of a connection: its certificate read once for many requests; a ban still refuses the next request', async () => {
    const socket = await serverSide;
    expect(socket.authorized).toBe(true);
    const reads = { session: 0, certificate: 0, chain: 0 };
    // The gate's view of the socket, counting what it reads.
    const counted = new Proxy(socket, {
      get(target, prop) {
        if (prop === 'getSession')
          return () => {
            reads.session++;
            return target.getSession();
          };
        if (prop === 'getPeerCertificate')
          return (detailed?: boolean) => {
            if (detailed) reads.chain++;
            else reads.certificate++;
            return target.getPeerCertificate(detailed as true);
          };
        // Node 24's X509 reader leaks every certificate after the leaf (sent-chain.ts): never called.
        if (prop === 'getPeerX509Certificate')
          return () => {
            throw new Error('getPeerX509Certificate leaks the sent chain');
          };
        const v = Reflect.get(target, prop, target);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const { d, gate: g } = await gate();
    const answers = Array.from({ length: 5 }, () => g.client(counted));
    for (const a of answers) expect(a !== null && a !== 'invalid' && a.spiffeId?.toString()).toBe(PARTNER_ID);
    expect(reads).toEqual({ session: 1, certificate: 0, chain: 1 });
    d.denyList.set(createDenyList([PARTNER_ID], []));
    expect(g.client(counted)).toBe('invalid');
    d.denyList.set(createDenyList([], []));
    expect(g.client(counted)).not.toBe('invalid');
    expect(reads.session).toBe(1);
  });
});

/** A real mTLS connection to a fresh server that asks for `client`'s certificate: the server's side of it. */
async function connectionOf(client: MintedSvid): Promise<{ socket: tls.TLSSocket; close: () => Promise<void> }> {
  const edgeCert = await mesh.mintSvid('spiffe://example.org/ns/edge/sa/edge');
  const srv = tls.createServer({ cert: edgeCert.chainPem, key: edgeCert.keyPem, ca: partner.bundlePem(), requestCert: true, rejectUnauthorized: false });
  const side = new Promise<tls.TLSSocket>((r) => srv.once('secureConnection', r));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const c = tls.connect({ host: '127.0.0.1', port: (srv.address() as AddressInfo).port, cert: client.chainPem, key: client.keyPem, rejectUnauthorized: false });
  c.on('error', () => {});
  const socket = await side;
  return {
    socket,
    close: () => {
      c.destroy();
      return new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

describe('EdgeGate.verifyClient: the chain the client sent', () => {
  test('an unrelated extra certificate is dropped before the check, on every read of the connection', async () => {
    const { gate: g } = await gate();
    const leaf = await partner.mintSvid(PARTNER_ID);
    const clean = await connectionOf(leaf);
    const stranger = (await TestCa.create({ trustDomain: 'stranger.example' })).root.cert;
    const extra = await connectionOf({ ...leaf, chainPem: leaf.chainPem + encodePem('CERTIFICATE', stranger.raw) });
    try {
      const ok = g.verifyClient(clean.socket);
      expect(ok !== null && !isFailure(ok) && ok.spiffeId?.toString()).toBe(PARTNER_ID);
      // The same leaf, now cached, with a certificate that is on no path: the same client, on every request.
      for (let i = 0; i < 2; i++) {
        const v = g.verifyClient(extra.socket);
        expect(v !== null && !isFailure(v) && v.spiffeId?.toString()).toBe(PARTNER_ID);
      }
      // An HTTP/2 session's socket view of that connection gets the same answer.
      const view = new Proxy(extra.socket, { get: (t, p) => (typeof Reflect.get(t, p) === 'function' ? (Reflect.get(t, p) as (...a: unknown[]) => unknown).bind(t) : Reflect.get(t, p)) });
      g.sameConnection(view, extra.socket);
      const viewed = g.client(view);
      expect(viewed !== null && viewed !== 'invalid' && viewed.spiffeId?.toString()).toBe(PARTNER_ID);
    } finally {
      await clean.close();
      await extra.close();
    }
  });

  test('certificates off the path are dropped however many were sent (a linked path past ten is refused: sent-chain.test.ts)', async () => {
    const { gate: g } = await gate();
    const leaf = await partner.mintSvid(PARTNER_ID);
    const many = await connectionOf({ ...leaf, chainPem: leaf.chainPem + (await Promise.all(Array.from({ length: 9 }, async () => encodePem('CERTIFICATE', (await TestCa.create({ trustDomain: 'x.example' })).root.cert.raw)))).join('') });
    try {
      const v = g.verifyClient(many.socket);
      expect(v !== null && !isFailure(v) && v.spiffeId?.toString()).toBe(PARTNER_ID);
    } finally {
      await many.close();
    }
  });
});
