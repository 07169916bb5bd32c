// Handshake-scenario server (own process, so its CPU is measured alone): mTLS, answers one request, closes.
// argv[2] = JSON {certFile, keyFile, caFile, perConnectionContext, ecdhCurve?}; prints "ready <port>".
import { readFileSync } from 'node:fs';
import { createSecureContext, createServer, type SecureContextOptions } from 'node:tls';

interface ServerArgs {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
  /** Build a new SecureContext for every connection (via SNI) instead of the one cached in the server. */
  readonly perConnectionContext: boolean;
  /** Restrict the key exchange groups, e.g. "X25519"; absent = Node's default list (X25519MLKEM768 first). */
  readonly ecdhCurve?: string;
}

const args = JSON.parse(process.argv[2] ?? '{}') as ServerArgs;
const material: SecureContextOptions = {
  cert: readFileSync(args.certFile),
  key: readFileSync(args.keyFile),
  ca: readFileSync(args.caFile),
  ...(args.ecdhCurve ? { ecdhCurve: args.ecdhCurve } : {}),
};
const RESPONSE = Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n');

const server = createServer(
  {
    ...material,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
    ...(args.perConnectionContext ? { SNICallback: (_name: string, cb: (err: Error | null, ctx?: ReturnType<typeof createSecureContext>) => void) => cb(null, createSecureContext(material)) } : {}),
  },
  (sock) => {
    sock.once('data', () => sock.end(RESPONSE));
    sock.on('error', () => sock.destroy());
  },
);
server.on('tlsClientError', () => {
  // counted by the client; nothing to log per connection
});
server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  process.stdout.write(`ready ${typeof addr === 'object' && addr ? addr.port : 0}\n`);
});
process.on('SIGTERM', () => process.exit(0));
