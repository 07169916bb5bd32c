// Tessera-minted SVIDs in a real node:tls mTLS handshake on loopback, with the SPIFFE check replacing
// Node's hostname check on the client and verifying the client SVID on the server.
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { SpiffeId } from '../../common/spiffe/spiffe-id.js';
import { TrustBundle, TrustBundleSet } from '../../common/spiffe/trust-bundle.js';
import { verifyX509Svid } from '../../common/spiffe/x509-svid.js';
import { type MintedSvid, TestCa } from '../helpers/test-ca.js';

const SERVER_ID = 'spiffe://example.org/ns/default/sa/api';
const CLIENT_ID = 'spiffe://example.org/ns/default/sa/web';
let ca: TestCa;
let server: tls.Server;
let serverSvid: MintedSvid;
let bundles: TrustBundleSet;
const seenByServer: string[] = [];

function peerChain(socket: tls.TLSSocket): Buffer[] {
  const out: Buffer[] = [];
  let c = socket.getPeerCertificate(true);
  while (c?.raw && !out.some((b) => b.equals(c.raw))) {
    out.push(c.raw);
    c = c.issuerCertificate;
  }
  return out;
}

beforeAll(async () => {
  ca = await TestCa.create();
  bundles = new TrustBundleSet([TrustBundle.parse('example.org', ca.bundlePem())]);
  serverSvid = await ca.mintSvid(SERVER_ID);
  server = tls.createServer({ cert: serverSvid.chainPem, key: serverSvid.keyPem, ca: ca.bundlePem(), requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, (socket) => {
    const r = verifyX509Svid(peerChain(socket), bundles, { nowMs: Date.now() });
    seenByServer.push(r.ok ? r.id.toString() : `fail:${r.code}`);
    socket.end(r.ok ? `hello ${r.id}` : 'denied');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

function connect(client: MintedSvid, expected: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1', port: (server.address() as AddressInfo).port, cert: client.chainPem, key: client.keyPem, ca: ca.bundlePem(),
      checkServerIdentity: (_host, cert) => {
        const r = verifyX509Svid([cert.raw], bundles.with(TrustBundle.parse('example.org', ca.bundlePem() + ca.intermediate.cert.toString())), { nowMs: Date.now(), expectedId: SpiffeId.parse(expected) });
        return r.ok ? undefined : new Error(r.reason);
      },
    });
    let data = '';
    socket.on('data', (d) => { data += d; });
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
  });
}

test('both sides learn and verify the other SPIFFE ID', async () => {
  const client = await ca.mintSvid(CLIENT_ID);
  expect(await connect(client, SERVER_ID)).toBe(`hello ${CLIENT_ID}`);
  expect(seenByServer).toContain(CLIENT_ID);
});

test('secure naming: the client refuses a server with another ID', async () => {
  const client = await ca.mintSvid(CLIENT_ID);
  await expect(connect(client, 'spiffe://example.org/ns/default/sa/other')).rejects.toThrow('id_mismatch');
});
