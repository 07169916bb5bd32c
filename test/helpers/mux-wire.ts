// Test helpers for the multiplexed transport (proxy/src/mux): connected loopback socket pairs (plain TCP, or mTLS with
// SVIDs of a test CA and ALPN tessera-mux/1), a frame builder, and a raw peer that writes hand-made frames and parses
// what the session under test answers, frame by frame (the hostile-peer tests read the GOAWAY and its code).
import * as net from 'node:net';
import * as tls from 'node:tls';
import { FrameType, HEADER_BYTES, header, MUX_ALPN, payloadBytes, readHeader } from '../../proxy/src/mux/mux-frame.js';
import { TestCa } from './test-ca.js';
import { until } from './until.js';

export interface SocketPair {
  /** The dialing end. */
  readonly client: net.Socket;
  /** The accepting end. */
  readonly server: net.Socket;
  close(): Promise<void>;
}

/** A connected pair of plain TCP sockets on loopback. */
export async function tcpPair(): Promise<SocketPair> {
  const listener = net.createServer();
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => listener.once('connection', r));
  const client = net.connect({ host: '127.0.0.1', port: (listener.address() as net.AddressInfo).port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', resolve);
    client.once('error', reject);
  });
  const server = await accepted;
  server.setNoDelay(true);
  return { client, server, close: () => closePair(listener, client, server) };
}

let ca: Promise<TestCa> | undefined;
let svids: Promise<{ server: { chainPem: string; keyPem: string }; client: { chainPem: string; keyPem: string } }> | undefined;

/** A connected pair of mTLS sockets on loopback (both sides verify the other's SVID; ALPN tessera-mux/1). */
export async function tlsPair(): Promise<SocketPair> {
  ca ??= TestCa.create({ trustDomain: 'mux.test' });
  const theCa = await ca;
  svids ??= (async () => ({ server: await theCa.mintSvid('spiffe://mux.test/server'), client: await theCa.mintSvid('spiffe://mux.test/client') }))();
  const { server: s, client: c } = await svids;
  const listener = tls.createServer({ cert: s.chainPem, key: s.keyPem, ca: theCa.bundlePem(), requestCert: true, rejectUnauthorized: true, ALPNProtocols: [MUX_ALPN] });
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const accepted = new Promise<tls.TLSSocket>((r) => listener.once('secureConnection', r));
  const client = tls.connect({
    host: '127.0.0.1',
    port: (listener.address() as net.AddressInfo).port,
    cert: c.chainPem,
    key: c.keyPem,
    ca: theCa.bundlePem(),
    ALPNProtocols: [MUX_ALPN],
    checkServerIdentity: () => undefined,
  });
  await new Promise<void>((resolve, reject) => {
    client.once('secureConnect', resolve);
    client.once('error', reject);
  });
  const server = await accepted;
  if (client.alpnProtocol !== MUX_ALPN) throw new Error(`ALPN not negotiated: ${client.alpnProtocol}`);
  return { client, server, close: () => closePair(listener, client, server) };
}

async function closePair(listener: net.Server, a: net.Socket, b: net.Socket): Promise<void> {
  a.destroy();
  b.destroy();
  await new Promise<void>((r) => listener.close(() => r()));
}

/** One frame as built by hand (any type number, any flags). */
export function frame(type: FrameType | number, flags: number, code: number, stream: number, length: number, payload?: Buffer): Buffer {
  const h = header(type as FrameType, flags, code, stream, length);
  return payload ? Buffer.concat([h, payload]) : h;
}

export interface ParsedFrame {
  readonly type: number;
  readonly flags: number;
  readonly code: number;
  readonly stream: number;
  readonly length: number;
  readonly payload: Buffer;
}

/** The raw end of a pair: every frame the session under test writes, parsed; whether the socket closed. */
export class RawPeer {
  readonly socket: net.Socket;
  readonly frames: ParsedFrame[] = [];
  closed = false;
  #buf: Buffer = Buffer.alloc(0);

  constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.#read(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
    });
  }

  write(...frames: Buffer[]): void {
    if (!this.socket.destroyed) this.socket.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames));
  }

  #read(chunk: Buffer): void {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    let at = 0;
    while (this.#buf.length - at >= HEADER_BYTES) {
      const h = readHeader(this.#buf, at);
      const n = payloadBytes(h);
      if (this.#buf.length - at < HEADER_BYTES + n) break;
      this.frames.push({ ...h, payload: Buffer.from(this.#buf.subarray(at + HEADER_BYTES, at + HEADER_BYTES + n)) });
      at += HEADER_BYTES + n;
    }
    this.#buf = this.#buf.subarray(at);
  }

  count(pred: (f: ParsedFrame) => boolean): number {
    return this.frames.filter(pred).length;
  }

  /** The first frame (in arrival order) that matches, waited for. */
  async next(what: string, pred: (f: ParsedFrame) => boolean, timeoutMs = 5_000): Promise<ParsedFrame> {
    await until(what, () => this.frames.some(pred), timeoutMs, 10);
    return this.frames.find(pred)!;
  }
}

/**
 * A raw tessera-mux/1 client of a real proxy's mTLS listener at `port` (a mesh peer holding an SVID: `tlsOptions`
 * from tlsOptionsOf, ALPN set here), once the server's SETTINGS have arrived. Throws if tessera-mux/1 was not agreed.
 */
export async function rawMuxClient(port: number, tlsOptions: tls.ConnectionOptions): Promise<RawPeer> {
  const socket = tls.connect({ host: '127.0.0.1', port, ...tlsOptions, ALPNProtocols: [MUX_ALPN], checkServerIdentity: () => undefined });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  if (socket.alpnProtocol !== MUX_ALPN) throw new Error(`ALPN ${String(socket.alpnProtocol)}, not ${MUX_ALPN}`);
  const raw = new RawPeer(socket);
  await raw.next('SETTINGS', (f) => f.type === FrameType.Settings);
  return raw;
}
