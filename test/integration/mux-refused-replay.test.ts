// A stream the upstream's proxy refuses (RST REFUSED) is replayed, as HTTP/2 replays a refused stream (outside audit
// 56b F3): a real `tessera proxy` (web) calls a hostile tessera-mux/1 server over mTLS that refuses the first
// stream(s) it is sent and then serves. A refused stream was provably not processed, so the request goes again
// once, on a new session (web opens no stream more on the one that refused: it says GOAWAY there), whatever its
// method, within the request's retry rules: no body, or a body held (a fixed upstream holds none), no byte of an
// answer yet. A second refusal, a refusal after part of an answer, or a body not held is answered 502
// `upstream_reset` as before. Before, every refusal was an immediate 502.
import { writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { Flag, FrameType, HEADER_BYTES, MUX_ALPN, MuxCode, header, payloadBytes, readHeader } from '../../proxy/src/mux/mux-frame.js';
import { call, jsonLines } from '../helpers/mux-mesh.js';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;

/** What the hostile server does with the next requests, and what it saw. */
interface Plan {
  /** Streams to refuse (RST REFUSED once their request head arrived), before serving. */
  refuse: number;
  /** Before refusing, send the start of an answer head. */
  partialFirst: boolean;
  /** Per connection, the request lines it was sent, in order; and whether the dialer said GOAWAY on it. */
  readonly sessions: { requests: string[]; goaway: boolean }[];
}

let cleanup: () => Promise<void>;
let server: tls.Server;
let web: ProxyProcess;
const plan: Plan = { refuse: 0, partialFirst: false, sessions: [] };

const frame = (type: FrameType, flags: number, code: number, stream: number, payload?: Buffer): Buffer => {
  const h = header(type, flags, code, stream, payload ? payload.length : 0);
  return payload ? Buffer.concat([h, payload]) : h;
};

/** One connection of the hostile server: SETTINGS, PING answers, and per request head a refusal or an answer. */
function serve(socket: tls.TLSSocket): void {
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
        socket.write(frame(FrameType.Data, Flag.Rst, MuxCode.Refused, h.stream));
        continue;
      }
      const body = Buffer.from(`served ${line} on session ${plan.sessions.indexOf(seen) + 1}`);
      socket.write(frame(FrameType.Data, 0, 0, h.stream, Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n`), body])));
    }
  });
}

beforeAll(async () => {
  let dir: string;
  ({ dir, cleanup } = await makeTempDir());
  const ca = await TestCa.create({ trustDomain: TD });
  const api = await ca.mintSvid(API);
  server = tls.createServer({ cert: api.chainPem, key: api.keyPem, ca: ca.bundlePem(), requestCert: true, rejectUnauthorized: true, ALPNProtocols: [MUX_ALPN] }, serve);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  await writeSvidFiles(ca, WEB, join(dir, 'web'));
  await writeFile(
    join(dir, 'web.yaml'),
    `identity:\n  files: { certFile: web/svid.pem, keyFile: web/key.pem, bundleFile: web/bundle.pem }\nadmin: { listen: 127.0.0.1:0 }\n` +
      `outbound:\n  - { name: hs, listen: 127.0.0.1:0, upstream: 127.0.0.1:${(server.address() as AddressInfo).port}, spiffeId: ${API} }\ntelemetry: { accessLog: stdout }\n`,
  );
  web = await startProxyProcess(join(dir, 'web.yaml'));
}, 60_000);

afterAll(async () => {
  await web?.stop();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  await cleanup?.();
});

beforeEach(() => {
  plan.refuse = 0;
  plan.partialFirst = false;
});

const port = () => web.ports.get('outbound/hs')!;

/** web's access-log line for `path` (the last one). */
async function logged(path: string): Promise<Record<string, unknown>> {
  await until(`the access log line of ${path}`, () => jsonLines(web.stdout()).some((l) => l.path === path), 10_000, 20);
  return jsonLines(web.stdout()).filter((l) => l.path === path).pop()!;
}

/** The request lines for `path` each session of the server was sent, for the sessions that were sent any. */
const carrying = (path: string) => plan.sessions.filter((x) => x.requests.some((r) => r.includes(path)));

describe('a refused stream', () => {
  test.each(['GET', 'DELETE', 'POST'])('%s without a body, refused once: sent again on a new session and answered 200', async (method) => {
    plan.refuse = 1;
    const path = `/once/${method}`;
    const a = await call(port(), path, { method });
    expect(a.status).toBe(200);
    // The refusing session got a GOAWAY from web and carried nothing more; the replay went to a new session.
    const sessions = carrying(path);
    expect(sessions).toHaveLength(2);
    expect(sessions[0]!.goaway).toBe(true);
    expect(sessions.map((x) => x.requests.filter((r) => r.includes(path)).length)).toEqual([1, 1]);
    expect(a.text).toBe(`served ${method} ${path} HTTP/1.1 on session ${plan.sessions.indexOf(sessions[1]!) + 1}`);
    expect((await logged(path)).status).toBe(200);
  });

  test('refused twice: one replay only, then 502 upstream_reset (the first refusal on a stream pooled after an exchange)', async () => {
    // A stream that carried an exchange waits in web's pool: its refusal is no stale keep-alive connection, and the
    // request is not replayed once for each.
    expect((await call(port(), '/before-twice')).status).toBe(200);
    plan.refuse = 2;
    const a = await call(port(), '/twice');
    expect(a.status).toBe(502);
    expect(carrying('/twice')).toHaveLength(2);
    const line = await logged('/twice');
    expect(line.status).toBe(502);
    expect(line.error).toBe('upstream_reset');
    plan.refuse = 0;
    expect((await call(port(), '/after-twice')).status).toBe(200); // a new session serves the next request
  });

  test('refused after the start of an answer came: no replay, 502 upstream_reset', async () => {
    plan.refuse = 1;
    plan.partialFirst = true;
    const a = await call(port(), '/partial');
    expect(a.status).toBe(502);
    expect(carrying('/partial')).toHaveLength(1);
    expect((await logged('/partial')).error).toBe('upstream_reset');
  });

  test('a POST whose body is not held (a fixed upstream holds none): no replay, 502 upstream_reset', async () => {
    plan.refuse = 1;
    const a = await call(port(), '/with-body', { method: 'POST', body: Buffer.from('a body the proxy did not keep') });
    expect(a.status).toBe(502);
    expect(carrying('/with-body')).toHaveLength(1);
  });
});
