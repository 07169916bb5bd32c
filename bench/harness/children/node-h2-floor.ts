// The "node http2 floor" pair of the mesh-h2 scenario: what `node:http2` itself costs for the shape Tessera's
// HTTP/2 listeners have (h2c in, h2 over one mTLS session between the two processes, h2c to the app), with none of
// a sidecar's work — no authorization, header rules, XFCC, deadlines, retries, metrics or access log. A measuring
// stick, not a proxy: each stream is forwarded with its method, path and authority, the body piped both ways, the
// answer's status and headers passed back; no trailers, no resets relayed, no limits. Its CPU per request shows how
// much of Tessera's HTTP/2 cost is Node's own.
//
// argv[2] = JSON. client: {role, listenPort, upstreamPort, certFile, keyFile, caFile, servername}: h2c in, every
// stream opened again on one h2 session over mTLS. server: {role, listenPort, appPort, certFile, keyFile, caFile}:
// h2 over mTLS in (client certificate required), every stream opened again on one h2c session to the app.
// Prints "ready <port>".
import { readFileSync } from 'node:fs';
import * as http2 from 'node:http2';

interface FloorArgs {
  readonly role: 'client' | 'server';
  readonly listenPort: number;
  readonly upstreamPort?: number;
  readonly appPort?: number;
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
  readonly servername?: string;
}

const args = JSON.parse(process.argv[2] ?? '{}') as FloorArgs;
const material = { cert: readFileSync(args.certFile), key: readFileSync(args.keyFile), ca: readFileSync(args.caFile) };

/** Forwards every stream `server` accepts onto `session`, which must stay up (a measuring stick has no reconnect). */
function forwardStreams(server: http2.Http2Server | http2.Http2SecureServer, session: http2.ClientHttp2Session): void {
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    const up = session.request({ ':method': headers[':method'], ':path': headers[':path'], ':authority': headers[':authority'] }, { endStream: stream.readableEnded });
    up.on('error', () => undefined);
    up.on('response', (h) => {
      if (stream.destroyed) return;
      const out: http2.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(h)) if (v !== undefined && (k === ':status' || !k.startsWith(':'))) out[k] = v;
      stream.respond(out);
      up.pipe(stream);
    });
    if (!stream.readableEnded) stream.pipe(up);
    stream.on('close', () => {
      if (!up.closed) up.close(http2.constants.NGHTTP2_CANCEL);
    });
  });
}

function fail(what: string): (e: Error) => void {
  return (e) => {
    process.stderr.write(`node http2 floor ${args.role}: ${what} ${e.message}\n`);
    process.exit(1);
  };
}

function ready(server: http2.Http2Server | http2.Http2SecureServer): void {
  const a = server.address() as { port?: number } | null;
  process.stdout.write(`ready ${a?.port ?? args.listenPort}\n`);
}

function client(): void {
  const session = http2.connect(`https://127.0.0.1:${args.upstreamPort}`, { ...material, servername: args.servername, checkServerIdentity: () => undefined });
  session.on('error', fail('upstream'));
  const server = http2.createServer();
  forwardStreams(server, session);
  session.once('connect', () => server.listen(args.listenPort, '127.0.0.1', () => ready(server)));
}

function server(): void {
  const app = http2.connect(`http://127.0.0.1:${args.appPort}`);
  app.on('error', fail('app'));
  const server = http2.createSecureServer({ ...material, requestCert: true, rejectUnauthorized: true });
  server.on('sessionError', () => undefined);
  forwardStreams(server, app);
  app.once('connect', () => server.listen(args.listenPort, '127.0.0.1', () => ready(server)));
}

if (args.role === 'client') client();
else server();
process.on('SIGTERM', () => process.exit(0));
