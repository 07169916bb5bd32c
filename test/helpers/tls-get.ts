// One HTTP/1.1 GET over a fresh mTLS connection (optionally resuming a session), for tests about handshakes and
// session tickets: the answer, whether the session was resumed, and the ticket the server sent.
import * as tls from 'node:tls';

export interface TlsGetResult {
  readonly answer: string;
  readonly resumed: boolean;
  readonly ticket?: Buffer;
}

export function tlsGet(opts: { port: number; certPem: string; keyPem: string; caPem: string; path?: string; session?: Buffer | undefined }): Promise<TlsGetResult> {
  return new Promise((resolve, reject) => {
    let ticket: Buffer | undefined;
    let resumed = false;
    const s = tls.connect(
      { host: '127.0.0.1', port: opts.port, cert: opts.certPem, key: opts.keyPem, ca: opts.caPem, checkServerIdentity: () => undefined, ...(opts.session ? { session: opts.session } : {}) },
      () => {
        resumed = s.isSessionReused(); // read here: it is null once the socket has closed
        s.write(`GET ${opts.path ?? '/'} HTTP/1.1\r\nhost: api\r\nconnection: close\r\n\r\n`);
      },
    );
    s.on('session', (t: Buffer) => {
      ticket = t;
    });
    let answer = '';
    s.on('data', (d) => {
      answer += d;
    });
    s.on('close', () => resolve({ answer, resumed, ...(ticket ? { ticket } : {}) }));
    s.on('error', reject);
  });
}
