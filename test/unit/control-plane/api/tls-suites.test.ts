// The control plane's TLS servers (the gRPC API, the SPIFFE bundle endpoint) speak TLS 1.2 only with
// forward-secret AEAD suites, as the proxies do (common/tls-ciphers.ts): a client offering only CBC suites (SHA-1
// or SHA-2 MACs) or only static RSA is refused at the handshake. Real sockets, node:tls clients.
import { connect } from 'node:tls';
import { afterAll, describe, expect, test } from 'vitest';
import { BundleEndpoint } from '../../../../control-plane/src/federation/bundle-endpoint.js';
import { apiPerFile } from '../../../helpers/control-plane-parts.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { TestCa } from '../../../helpers/test-ca.js';

/** 'ok' when a TLS 1.2 handshake offering only `ciphers` completes, else the client's error code. */
function handshake(port: number, ciphers: string, alpn: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, maxVersion: 'TLSv1.2', ciphers, rejectUnauthorized: false, ALPNProtocols: [alpn] }, () => {
      s.destroy();
      resolve('ok');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

const REFUSED = ['ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA', 'ECDHE-ECDSA-AES128-SHA256', 'ECDHE-ECDSA-AES256-SHA384', 'AES128-GCM-SHA256', 'AES128-SHA'];
const SERVED = ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305'];

async function expectAeadOnly(port: number, alpn: string): Promise<void> {
  for (const c of REFUSED) expect(await handshake(port, c, alpn), c).not.toBe('ok');
  for (const c of SERVED) expect(await handshake(port, c, alpn), c).toBe('ok');
}

describe('control-plane TLS suites', () => {
  const t = apiPerFile(new FakeTime(Math.floor(Date.now() / 1000) * 1000));

  test('the gRPC API: TLS 1.2 with AEAD suites only', async () => {
    await expectAeadOnly(t.api.server.port, 'h2');
  });

  let endpoint: BundleEndpoint | undefined;
  afterAll(async () => endpoint?.stop());

  test('the bundle endpoint: TLS 1.2 with AEAD suites only', async () => {
    const ca = await TestCa.create({ trustDomain: 'a.test' });
    const svid = await ca.mintSvid('spiffe://a.test/endpoint', { dnsSans: ['localhost'] });
    endpoint = await BundleEndpoint.start({ listen: '127.0.0.1:0', document: () => '{"keys":[]}', identity: { certChainPem: svid.chainPem, keyPem: svid.keyPem }, log: { info: () => {}, warn: () => {}, error: () => {} }, handshakeTimeoutMs: 10_000, maxConnections: 100 });
    await expectAeadOnly(Number(endpoint.address.split(':').pop()), 'http/1.1');
  });
});
