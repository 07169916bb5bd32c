// A hostile tessera-mux/1 server over mTLS for replay tests: it refuses the next `plan.refuse` streams (RST REFUSED
// once their request head arrived, or another code; optionally after the start of an answer head), then serves each request with
// `served <request line> on session <n>`. It records, per connection, the request lines it was sent and whether the
// dialer said GOAWAY there.
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { Flag, FrameType, HEADER_BYTES, MUX_ALPN, MuxCode, header, payloadBytes, readHeader } from '../../proxy/src/mux/mux-frame.js';
import type { TestCa } from './test-ca.js';

/** What the server does with the next requests, and what it saw. */
export interface RefusalPlan {
  /** Streams to refuse (RST REFUSED once their request head arrived), before serving. */
  refuse: number;
  /** Before refusing, send the start of an answer head. */
  partialFirst: boolean;
  /** The reset's code (REFUSED unless set). */
  code: MuxCode;
  /** Per connection, the request lines it was sent, in order; and whether the dialer said GOAWAY on it. */
  readonly sessions: { requests: string[]; goaway: boolean }[];
}

export interface RefusingMuxServer {
  readonly port: number;
  readonly plan: RefusalPlan;
  /** The sessions that were sent a request for `path`. */
  carrying(path: string): RefusalPlan['sessions'];
  close(): Promise<void>;
}

const frame = (type: FrameType, flags: number, code: number, stream: number, payload?: Buffer): Buffer => {
  const h = header(type, flags, code, stream, payload ? payload.length : 0);
  return payload ? Buffer.concat([h, payload]) : h;
};

/** One connection: SETTINGS, PING answers, and per request head a refusal or an answer. */
function serve(socket: tls.TLSSocket, plan: RefusalPlan): void {
  const seen = { requests: [] as string[], goaway: false };
  plan.sessions.push(seen);
  socket.on('error', () => undefined);
  socket.write(header(FrameType.Settings, 0, 0, 0, 100));
  let buf = Buffer.alloc(0);
  const heads = new Map<number, string>();
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= HEADER_BYTES) {
      const h = readHeader(buf, 0);
      const n = payloadBytes(h);
      if (buf.length < HEADER_BYTES + n) break;
      const payload = buf.subarray(HEADER_BYTES, HEADER_BYTES + n);
      buf = buf.subarray(HEADER_BYTES + n);
      if (h.type === FrameType.Ping && !(h.flags & Flag.Ack)) socket.write(header(FrameType.Ping, Flag.Ack, 0, 0, h.length));
      if (h.type === FrameType.GoAway) seen.goaway = true;
      if (h.type !== FrameType.Data || n === 0) continue;
      const text = (heads.get(h.stream) ?? '') + payload.toString('latin1');
      heads.set(h.stream, text);
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) continue;
      const line = text.slice(0, text.indexOf('\r\n'));
      heads.set(h.stream, text.slice(end + 4 + Number(/content-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? 0)));
      seen.requests.push(line);
      if (plan.refuse > 0) {
        plan.refuse--;
        if (plan.partialFirst) socket.write(frame(FrameType.Data, 0, 0, h.stream, Buffer.from('HTTP/1.1 200 OK\r\ncontent-')));
        socket.write(frame(FrameType.Data, Flag.Rst, plan.code, h.stream));
        continue;
      }
      const body = Buffer.from(`served ${line} on session ${plan.sessions.indexOf(seen) + 1}`);
      socket.write(frame(FrameType.Data, 0, 0, h.stream, Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n`), body])));
    }
  });
}

/** Listens on 127.0.0.1 with an SVID for `id` from `ca`, client certificates of `ca` required. */
export async function startRefusingMuxServer(ca: TestCa, id: string): Promise<RefusingMuxServer> {
  const svid = await ca.mintSvid(id);
  const plan: RefusalPlan = { refuse: 0, partialFirst: false, code: MuxCode.Refused, sessions: [] };
  const server = tls.createServer({ cert: svid.chainPem, key: svid.keyPem, ca: ca.bundlePem(), requestCert: true, rejectUnauthorized: true, ALPNProtocols: [MUX_ALPN] }, (s) => serve(s, plan));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    plan,
    carrying: (path) => plan.sessions.filter((x) => x.requests.some((r) => r.includes(path))),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
