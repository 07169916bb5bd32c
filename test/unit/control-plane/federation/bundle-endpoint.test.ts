// The bundle endpoint on a real loopback socket: GET answers the document as it is now (a rotation is served at
// once), other methods 405; https_web presents the configured certificate (checked by curl-like host-name
// verification with the test CA), and updateIdentity swaps the certificate for the next handshakes.
import type { X509Certificate } from 'node:crypto';
import { request } from 'node:https';
import { connect as netConnect } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, describe, expect, test } from 'vitest';
import { BundleEndpoint } from '../../../../control-plane/src/federation/bundle-endpoint.js';
import { TestCa } from '../../../helpers/test-ca.js';

const silent = { info: () => {}, warn: () => {}, error: () => {} };
let endpoint: BundleEndpoint | undefined;
afterEach(async () => endpoint?.stop());

function get(port: number, caPem: string, method = 'GET'): Promise<{ status: number; body: string; serial: string; type: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: 'localhost', port, method, path: '/', ca: caPem, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (b: Buffer) => parts.push(b));
      res.on('end', () => {
        const peer = (res.socket as TLSSocket).getPeerX509Certificate() as X509Certificate | undefined;
        resolve({ status: res.statusCode!, body: Buffer.concat(parts).toString(), serial: peer?.serialNumber ?? '', type: res.headers['content-type'] });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('BundleEndpoint', () => {
  test('serves the current document over https_web, refuses other methods, swaps its certificate', async () => {
    const ca = await TestCa.create({ trustDomain: 'a.test' });
    const first = await ca.mintSvid('spiffe://a.test/endpoint', { dnsSans: ['localhost'] });
    let doc = '{"keys":[],"spiffe_sequence":1}';
    endpoint = await BundleEndpoint.start({ listen: '127.0.0.1:0', document: () => doc, identity: { certChainPem: first.chainPem, keyPem: first.keyPem }, log: silent, handshakeTimeoutMs: 10_000, maxConnections: 100 });
    const port = Number(endpoint.address.split(':').pop());
    const a = await get(port, ca.bundlePem());
    expect(a).toMatchObject({ status: 200, body: doc, serial: first.leaf.serialNumber, type: 'application/json' });
    doc = '{"keys":[],"spiffe_sequence":2}';
    expect((await get(port, ca.bundlePem())).body).toBe(doc);
    expect((await get(port, ca.bundlePem(), 'POST')).status).toBe(405);
    const second = await ca.mintSvid('spiffe://a.test/endpoint', { dnsSans: ['localhost'] });
    endpoint.updateIdentity({ certChainPem: second.chainPem, keyPem: second.keyPem });
    expect((await get(port, ca.bundlePem())).serial).toBe(second.leaf.serialNumber);
    // Checked by another CA's roots, the server is refused (https_web is plain Web PKI).
    await expect(get(port, (await TestCa.create()).bundlePem())).rejects.toThrow();
  });

  test('an unreadable document answers 503', async () => {
    const ca = await TestCa.create({ trustDomain: 'a.test' });
    const svid = await ca.mintSvid('spiffe://a.test/endpoint', { dnsSans: ['localhost'] });
    endpoint = await BundleEndpoint.start({
      listen: '127.0.0.1:0',
      document: () => {
        throw new Error('gone');
      },
      identity: { certChainPem: svid.chainPem, keyPem: svid.keyPem },
      log: silent,
      handshakeTimeoutMs: 10_000,
      maxConnections: 100,
    });
    expect((await get(Number(endpoint.address.split(':').pop()), ca.bundlePem())).status).toBe(503);
  });

  test('bounded like the gRPC port: a silent connection is cut at the handshake deadline; at the cap the oldest idle one makes room (whoever connects first cannot hold every slot); renegotiation refused; all counted', async () => {
    const ca = await TestCa.create({ trustDomain: 'a.test' });
    const svid = await ca.mintSvid('spiffe://a.test/endpoint', { dnsSans: ['localhost'] });
    const refused: string[] = [];
    endpoint = await BundleEndpoint.start({ listen: '127.0.0.1:0', document: () => '{"keys":[]}', identity: { certChainPem: svid.chainPem, keyPem: svid.keyPem }, log: silent, handshakeTimeoutMs: 300, maxConnections: 3, onRefused: (r) => refused.push(r) });
    const port = Number(endpoint.address.split(':').pop());
    /** A TCP connection that sends nothing; resolves with the ms until the server closed it. */
    const silentConnection = () =>
      new Promise<number>((resolve) => {
        const at = Date.now();
        const s = netConnect(port, '127.0.0.1');
        s.on('error', () => {});
        s.on('close', () => resolve(Date.now() - at));
      });
    // Three fill the cap; a fourth closes the oldest to get in; every one goes at the handshake deadline
    // (Node's default: 120 s).
    const first = silentConnection();
    await new Promise((r) => setTimeout(r, 20));
    const others = [silentConnection(), silentConnection()];
    await new Promise((r) => setTimeout(r, 50));
    const fourth = silentConnection();
    expect(await first).toBeLessThan(250);
    for (const ms of await Promise.all([...others, fourth])) expect(ms).toBeLessThan(5_000);
    expect(refused.filter((r) => r === 'max_connections')).toHaveLength(1);
    expect(refused.filter((r) => r === 'timeout')).toHaveLength(3);
    // The one closed to make room is counted once (audit 61e F2: also as a failed handshake, protocol).
    expect(refused.filter((r) => r === 'protocol')).toHaveLength(0);
    // Held slots do not keep a real client out: three more silent ones, then a fetch.
    const fillers = [silentConnection(), silentConnection(), silentConnection()];
    await new Promise((r) => setTimeout(r, 50));
    expect((await get(port, ca.bundlePem())).status).toBe(200);
    await Promise.all(fillers);
    // Garbage instead of a ClientHello: refused, counted as protocol; the endpoint still serves.
    await new Promise<void>((resolve) => {
      const s = netConnect(port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      s.on('error', () => {});
      s.on('close', () => resolve());
      s.resume();
    });
    expect(refused).toContain('protocol');
    // A TLS 1.2 client that asks to renegotiate is refused and counted.
    const before = refused.filter((r) => r === 'protocol').length;
    const renegotiated = await new Promise<boolean>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port, maxVersion: 'TLSv1.2', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
        s.resume(); // the renegotiation and the close travel through reads
        s.renegotiate({ rejectUnauthorized: false }, (err) => resolve(!err));
      });
      s.on('error', () => {});
      s.once('close', () => resolve(false));
    });
    expect(renegotiated).toBe(false);
    for (let i = 0; i < 50 && refused.filter((r) => r === 'protocol').length === before; i++) await new Promise((r) => setTimeout(r, 20));
    expect(refused.filter((r) => r === 'protocol').length).toBe(before + 1);
    expect((await get(port, ca.bundlePem())).status).toBe(200);
  });
});
