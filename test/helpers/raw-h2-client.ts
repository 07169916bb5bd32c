// A raw HTTP/2 client for flood tests, over a socket already connected (TCP, TLS with h2, a Unix socket): it sends
// the preface and its SETTINGS, acknowledges the server's SETTINGS, and keeps the GOAWAY codes it is sent; floodUntilCut
// then repeats one frame until the server says GOAWAY or closes, bounded in time.
import type * as net from 'node:net';
import * as tls from 'node:tls';
import { h2Frame } from './raw-h2-app.js';

const SETTINGS = 4;
const GOAWAY = 7;
const ACK = 1;

export interface RawH2Conn {
  readonly socket: net.Socket;
  /** The error code of every GOAWAY received. */
  readonly goaways: number[];
  /** The last stream id every GOAWAY received names. */
  readonly goawayLastIds: number[];
  /** Every frame received, in order: type, flags, stream id. */
  readonly frames: { readonly type: number; readonly flags: number; readonly id: number }[];
  closed: boolean;
}

export function rawH2Client(socket: net.Socket): RawH2Conn {
  const c: RawH2Conn = { socket, goaways: [], goawayLastIds: [], frames: [], closed: false };
  let buf = Buffer.alloc(0);
  socket.on('error', () => undefined);
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
      const [type, flags] = [buf[3]!, buf[4]!];
      c.frames.push({ type, flags, id: buf.readUInt32BE(5) & 0x7fffffff });
      if (type === GOAWAY) {
        c.goawayLastIds.push(buf.readUInt32BE(9) & 0x7fffffff);
        c.goaways.push(buf.readUInt32BE(13));
      }
      if (type === SETTINGS && (flags & ACK) === 0 && !socket.destroyed) socket.write(h2Frame(SETTINGS, ACK, 0));
      buf = buf.subarray(9 + buf.readUIntBE(0, 3));
    }
  });
  socket.once('close', () => {
    c.closed = true;
  });
  socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), h2Frame(SETTINGS, 0, 0)]));
  return c;
}

/**
 * Writes `unit` `per` times over every 10 ms (while the socket has less than 4 MiB queued) for up to `ms`, until the
 * server sends GOAWAY or closes.
 */
export async function floodUntilCut(c: RawH2Conn, unit: Buffer, per = 500, ms = 8_000): Promise<void> {
  const many = Buffer.concat(Array.from({ length: per }, () => unit));
  const end = Date.now() + ms;
  while (Date.now() < end && c.goaways.length === 0 && !c.closed) {
    if (c.socket.writableLength < 4 << 20) c.socket.write(many);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A raw HTTP/2 client of a TLS listener at `port` on loopback (ALPN h2, `servername`, trusting `ca`), once handshaken. */
export async function rawH2TlsClient(port: number, servername: string, ca: string): Promise<RawH2Conn> {
  const socket = tls.connect({ host: '127.0.0.1', port, servername, ca, ALPNProtocols: ['h2'] });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  return rawH2Client(socket);
}
