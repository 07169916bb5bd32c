// An mTLS server that refuses every client: its CA is not the one the client's certificate chains to.
import { writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createServer } from 'node:tls';
import { TestCa } from './test-ca.js';

export interface RefusingServer {
  readonly url: string;
  /** Client certificate and key files, written into the directory given. */
  readonly certFile: string;
  readonly keyFile: string;
  /** Handshakes the server refused so far. */
  refused(): number;
  close(): Promise<void>;
}

export async function startRefusingTlsServer(dir: string): Promise<RefusingServer> {
  const serverCa = await TestCa.create({ trustDomain: 'server.test' });
  const clientCa = await TestCa.create({ trustDomain: 'client.test' });
  const serverSvid = await serverCa.mintSvid('spiffe://server.test/api');
  const clientSvid = await clientCa.mintSvid('spiffe://client.test/load');
  const certFile = join(dir, 'client-svid.pem');
  const keyFile = join(dir, 'client-key.pem');
  await writeFile(certFile, clientSvid.chainPem);
  await writeFile(keyFile, clientSvid.keyPem);
  let refused = 0;
  const server = createServer({ cert: serverSvid.chainPem, key: serverSvid.keyPem, ca: serverCa.bundlePem(), requestCert: true, rejectUnauthorized: true }, (s) =>
    s.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'),
  );
  server.on('tlsClientError', () => refused++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    certFile,
    keyFile,
    refused: () => refused,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
