// The "node floor" pair of the mesh scenario: what one multiplexed mTLS connection between two Node processes costs
// with none of a sidecar's work — no HTTP parsing at all, no authorization, XFCC, metrics, access log, flow control,
// limits or reconnect. A measuring stick, not a proxy: bytes are moved, never read, so it serves exactly the
// keep-alive traffic the bench sends and nothing else. Its CPU per request shows how much of Tessera's is Node's own
// floor for this shape and how much is Tessera's features.
//
// argv[2] = JSON. client: {role, listenPort, upstreamPort, certFile, keyFile, caFile, servername}: plaintext in, every
// read of a caller framed as [u32 stream id][u32 length][bytes] onto one mTLS connection, the answers' bytes routed
// back by id. server: {role, listenPort, appPort, certFile, keyFile, caFile}: mTLS in (client certificate required),
// each stream given its own keep-alive connection to the app, whose bytes go back framed with the stream's id. Both
// coalesce one event-loop turn's frames into one TLS write (setImmediate). Prints "ready <port>".
import { readFileSync } from 'node:fs';
import { connect as netConnect, createServer as netServer, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as tlsServer, type TLSSocket } from 'node:tls';

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

/** Frames written in one event-loop turn leave in one TLS write. */
function framedWriter(sock: TLSSocket): (id: number, payload: Buffer) => void {
  let out: Buffer[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const b = out.length === 1 ? out[0]! : Buffer.concat(out);
    out = [];
    sock.write(b);
  };
  return (id, payload) => {
    const h = Buffer.allocUnsafe(8);
    h.writeUInt32BE(id, 0);
    h.writeUInt32BE(payload.length, 4);
    out.push(h, payload);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
}

/** Calls `onFrame` for every whole frame the socket delivers. */
function readFrames(sock: TLSSocket, onFrame: (id: number, payload: Buffer) => void): void {
  let buf: Buffer | null = null;
  sock.on('data', (d: Buffer) => {
    let b = buf ? Buffer.concat([buf, d]) : d;
    while (b.length >= 8) {
      const len = b.readUInt32BE(4);
      if (b.length < 8 + len) break;
      onFrame(b.readUInt32BE(0), b.subarray(8, 8 + len));
      b = b.subarray(8 + len);
    }
    buf = b.length > 0 ? b : null;
  });
}

/** The bound port (listenPort may be 0). */
function ready(server: { address(): unknown }): void {
  const a = server.address() as { port?: number } | null;
  process.stdout.write(`ready ${a?.port ?? args.listenPort}\n`);
}

function client(): void {
  const up = tlsConnect({ host: '127.0.0.1', port: args.upstreamPort!, ...material, servername: args.servername, checkServerIdentity: () => undefined });
  up.setNoDelay(true);
  up.on('error', (e) => {
    process.stderr.write(`node floor client: upstream ${e.message}\n`);
    process.exit(1);
  });
  const send = framedWriter(up);
  const callers = new Map<number, Socket>();
  let nextId = 1;
  readFrames(up, (id, payload) => callers.get(id)?.write(payload));
  const server = netServer((s) => {
    s.setNoDelay(true);
    const id = nextId++;
    callers.set(id, s);
    s.on('data', (d: Buffer) => send(id, d));
    s.on('close', () => callers.delete(id));
    s.on('error', () => s.destroy());
  });
  up.once('secureConnect', () => server.listen(args.listenPort, '127.0.0.1', () => ready(server)));
}

function server(): void {
  const s = tlsServer({ ...material, requestCert: true, rejectUnauthorized: true }, (t) => {
    t.setNoDelay(true);
    t.on('error', () => t.destroy());
    const send = framedWriter(t);
    // One keep-alive app connection per stream, for the stream's life: requests (pipelined ones too) and answers
    // keep their order without parsing either.
    const apps = new Map<number, Socket>();
    readFrames(t, (id, payload) => {
      let app = apps.get(id);
      if (!app) {
        const c = netConnect({ host: '127.0.0.1', port: args.appPort!, noDelay: true });
        c.on('data', (d: Buffer) => send(id, d));
        c.on('error', () => c.destroy());
        apps.set(id, c);
        app = c;
      }
      app.write(payload);
    });
    t.on('close', () => {
      for (const c of apps.values()) c.destroy();
    });
  });
  s.listen(args.listenPort, '127.0.0.1', () => ready(s));
}

if (args.role === 'client') client();
else server();
process.on('SIGTERM', () => process.exit(0));
