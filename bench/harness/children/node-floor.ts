// The "node floor" pair of the mesh scenario: what one multiplexed mTLS connection between two Node processes costs
// with none of a sidecar's work — no HTTP parsing or validation on the client side, no authorization, XFCC, metrics,
// access log, flow control, limits or reconnect. A measuring stick, not a proxy: it handles exactly the keep-alive
// traffic the bench sends (small GETs, each in one read; answers with a Content-Length), and nothing else. Its CPU
// per request shows how much of Tessera's is Node's own floor for this shape and how much is Tessera's features.
//
// argv[2] = JSON. client: {role, listenPort, upstreamPort, certFile, keyFile, caFile, servername}: plaintext HTTP/1.1
// in, every read framed as [u32 stream id][u32 length][bytes] onto one mTLS connection, answers routed back by id.
// server: {role, listenPort, appPort, certFile, keyFile, caFile}: mTLS in (client certificate required), each
// stream's bytes to a pooled keep-alive connection to the app (one exchange at a time), the answer framed back.
// Both coalesce one event-loop turn's frames into one TLS write (setImmediate). Prints "ready <port>".
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
const HEAD_END = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)/i;


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

/** A keep-alive connection to the app that carries one exchange at a time and hands back whole answers. */
class AppConn {
  readonly socket: Socket;
  #buf: Buffer | null = null;
  onAnswer: ((answer: Buffer) => void) | null = null;
  constructor(port: number, release: (c: AppConn) => void) {
    this.socket = netConnect({ host: '127.0.0.1', port, noDelay: true });
    this.socket.on('data', (d: Buffer) => {
      const b = this.#buf ? Buffer.concat([this.#buf, d]) : d;
      const end = b.indexOf(HEAD_END);
      const length = end < 0 ? -1 : end + 4 + Number(CONTENT_LENGTH.exec(b.toString('latin1', 0, end))?.[1] ?? 0);
      if (length < 0 || b.length < length) {
        this.#buf = b;
        return;
      }
      this.#buf = null;
      const answer = this.onAnswer;
      this.onAnswer = null;
      release(this);
      answer?.(b.subarray(0, length));
    });
    this.socket.on('error', () => this.socket.destroy());
  }
}

function server(): void {
  const idle: AppConn[] = [];
  const release = (c: AppConn) => idle.push(c);
  const s = tlsServer({ ...material, requestCert: true, rejectUnauthorized: true }, (t) => {
    t.setNoDelay(true);
    t.on('error', () => t.destroy());
    const send = framedWriter(t);
    // A request in several frames stays on the app connection its first frame took.
    const busy = new Map<number, AppConn>();
    readFrames(t, (id, payload) => {
      let c = busy.get(id);
      if (!c) {
        c = idle.pop() ?? new AppConn(args.appPort!, release);
        busy.set(id, c);
        c.onAnswer = (answer) => {
          busy.delete(id);
          send(id, answer);
        };
      }
      c.socket.write(payload);
    });
  });
  s.listen(args.listenPort, '127.0.0.1', () => ready(s));
}

if (args.role === 'client') client();
else server();
process.on('SIGTERM', () => process.exit(0));
