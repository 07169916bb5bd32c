// One TLS connection to a listener with a client certificate (or none) that sends a request and reads until the
// close: what a refused client got back ('' when the handshake or the listener refused it). Handshake-reason tests
// of the sidecar inbound and the edge use it.
import * as tls from 'node:tls';

export interface ClientCert {
  readonly chainPem: string;
  readonly keyPem: string;
}

export function tlsAttempt(port: number, cert: ClientCert | null, request: string, opts: tls.ConnectionOptions = {}): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...(cert ? { cert: cert.chainPem, key: cert.keyPem } : {}), ...opts }, () => s.write(request));
    let data = '';
    s.on('data', (d) => {
      data += d;
    });
    s.on('error', () => resolve(data));
    s.on('close', () => resolve(data));
    s.setTimeout(5_000, () => s.destroy());
  });
}
