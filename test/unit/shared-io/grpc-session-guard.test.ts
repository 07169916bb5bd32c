// The control-traffic bound on a grpc-js server fed by a connection injector (shared-io/grpc-session-guard.ts, audit
// 53a F2), on a real grpc-js server over loopback TCP with real timers: a raw client's WINDOW_UPDATE flood is cut
// with GOAWAY ENHANCE_YOUR_CALM and reported once; a grpc-js client uploading megabytes in requests answered with
// two bytes, reading a long server stream and sending keepalive PINGs all along is not; a grpc-js whose injector
// hides its HTTP/2 server fails the start with a code; unfinished request messages across connections are held up to
// the server's bound, the stream past it refused (audit 55c F1).
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterEach, expect, test } from 'vitest';
import { systemClock } from '../../../common/clock.js';
import { isTesseraError } from '../../../common/errors.js';
import { GrpcSessionGuard } from '../../../shared-io/grpc-session-guard.js';
import { realTimers } from '../../../shared-io/timers.js';
import { h2Frame } from '../../helpers/raw-h2-app.js';
import { floodUntilCut, rawH2Client } from '../../helpers/raw-h2-client.js';
import { until } from '../../helpers/until.js';

const pass = (b: Buffer) => b;
const MESSAGES = { timeoutMs: 10_000, maxMessageBytes: 4 * 1024 * 1024, nowMs: systemClock.nowMs };
const SERVICE: grpc.ServiceDefinition = {
  Up: { path: '/t.T/Up', requestStream: false, responseStream: false, requestSerialize: pass, requestDeserialize: pass, responseSerialize: pass, responseDeserialize: pass, originalName: 'Up' },
  Down: { path: '/t.T/Down', requestStream: false, responseStream: true, requestSerialize: pass, requestDeserialize: pass, responseSerialize: pass, responseDeserialize: pass, originalName: 'Down' },
};
const Client = grpc.makeGenericClientConstructor(SERVICE, 't.T');
type TestClient = grpc.Client & {
  Up(req: Buffer, cb: (err: grpc.ServiceError | null, res: Buffer) => void): void;
  Down(req: Buffer): grpc.ClientReadableStream<Buffer>;
};

const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

/** A grpc-js server behind our own TCP listener and the guard's injector; what the guard reported. */
async function start(messages = MESSAGES): Promise<{ port: number; rejected: string[]; guard: GrpcSessionGuard }> {
  const server = new grpc.Server({ 'grpc.max_concurrent_streams': 100, 'grpc-node.max_session_memory': 10 });
  server.addService(SERVICE, {
    Up: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from('ok')),
    // `n` messages of 16 KiB (the request's first byte, in hundreds).
    Down: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      for (let i = 0; i < (call.request[0] ?? 0) * 100; i++) call.write(Buffer.alloc(16 * 1024, i));
      call.end();
    },
  });
  const rejected: string[] = [];
  const { injector, guard } = GrpcSessionGuard.injector(server, grpc.ServerCredentials.createInsecure(), { timers: realTimers, messages, onRejected: (r) => rejected.push(r) });
  const sockets = new Set<net.Socket>();
  const listener = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    injector.injectConnection(s);
  });
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  closers.push(() => {
    server.forceShutdown();
    injector.destroy();
    guard.stop();
    for (const s of sockets) s.destroy();
    listener.close();
  });
  return { port: (listener.address() as net.AddressInfo).port, rejected, guard };
}

test('a grpc-js that hides the HTTP/2 server behind its injector: the start fails with a code, not an unguarded server', () => {
  let destroyed = false;
  const destroy = () => {
    destroyed = true;
  };
  const hidden = { createConnectionInjector: () => ({ injectConnection: () => undefined, drain: () => undefined, destroy }) } as unknown as grpc.Server;
  let thrown: unknown;
  try {
    GrpcSessionGuard.injector(hidden, grpc.ServerCredentials.createInsecure(), { timers: realTimers, messages: MESSAGES, onRejected: () => undefined });
  } catch (e) {
    thrown = e;
  }
  expect(isTesseraError(thrown) && thrown.code).toBe('TESSERA_ERR_GRPC_SESSIONS_UNREACHABLE');
  expect(destroyed).toBe(true);
});

test('a WINDOW_UPDATE flood: GOAWAY ENHANCE_YOUR_CALM within a sweep or two, reported once as http2_flood, then closed', async () => {
  const s = await start();
  const c = net.connect(s.port, '127.0.0.1');
  c.on('error', () => undefined);
  await new Promise<void>((r) => c.once('connect', () => r()));
  const raw = rawH2Client(c);
  await floodUntilCut(raw, h2Frame(8, 0, 0, Buffer.from([0, 0, 0, 1])), 500, 6_000);
  expect(raw.goaways[0]).toBe(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  await until('the connection closed', () => raw.closed, 5_000, 20);
  expect(s.rejected).toEqual(['http2_flood']);
  await until('the session forgotten', () => s.guard.size === 0, 5_000, 20);
}, 20_000);

test('a well-behaved grpc-js client: 6 MiB uploaded for 2-byte answers, 6 MiB read from a stream, PINGs every 100 ms: never cut', async () => {
  const s = await start();
  const client = new Client(`127.0.0.1:${s.port}`, grpc.credentials.createInsecure(), { 'grpc.keepalive_time_ms': 100, 'grpc.keepalive_permit_without_calls': 1 }) as unknown as TestClient;
  closers.push(() => client.close());
  const up = () => new Promise<string>((resolve) => client.Up(Buffer.alloc(48 * 1024, 0x61), (err, res) => resolve(err ? err.message : res.toString())));
  for (let i = 0; i < 128; i++) expect(await up()).toBe('ok');
  // A sweep reads the budget before anything large was written back: the uploads are the client's requests.
  await new Promise((r) => setTimeout(r, 1_500));
  expect(await up()).toBe('ok');
  expect(s.rejected).toEqual([]);
  const got = await new Promise<number>((resolve) => {
    let n = 0;
    const call = client.Down(Buffer.from([4]));
    call.on('data', (m: Buffer) => {
      n += m.length;
    });
    call.on('end', () => resolve(n));
    call.on('error', () => resolve(-n));
  });
  expect(got).toBe(400 * 16 * 1024);
  // Idle with PINGs across a few sweeps, then a last call on the same connection.
  await new Promise((r) => setTimeout(r, 2_500));
  expect(await up()).toBe('ok');
  expect(s.rejected).toEqual([]);
}, 30_000);

test('unfinished messages across connections: held up to 64 x the largest read, the stream past it refused (REFUSED_STREAM), counted message_bytes', async () => {
  // A largest read of 1,000 bytes: each connection may hold 2,000, the server 64,000 (64 messages of 995).
  const { port, rejected, guard } = await start({ timeoutMs: 60_000, maxMessageBytes: 1_000, nowMs: systemClock.nowMs });
  const prefix = Buffer.from([0, 0, 0, 0x03, 0xe3]); // declares 995 bytes
  const part = Buffer.concat([prefix, Buffer.alloc(985, 1)]);
  const sessions = Array.from({ length: 33 }, () => http2.connect(`http://127.0.0.1:${port}`));
  const codes: number[] = [];
  for (const s of sessions) {
    s.on('error', () => undefined);
    closers.push(() => s.destroy());
    for (let i = 0; i < 2; i++) {
      const st = s.request({ ':method': 'POST', ':path': '/t.T/Up', 'content-type': 'application/grpc', te: 'trailers' });
      st.on('error', () => undefined);
      st.once('close', () => codes.push(st.rstCode ?? 0));
      st.write(part);
    }
  }
  await until('two streams refused', () => codes.length >= 2);
  await until('the rest held', () => guard.heldBytes === 64 * 990);
  expect(codes).toEqual([http2.constants.NGHTTP2_REFUSED_STREAM, http2.constants.NGHTTP2_REFUSED_STREAM]);
  expect(rejected).toEqual(['message_bytes', 'message_bytes']);
  for (const s of sessions) s.destroy();
  await until('released with their connections', () => guard.heldBytes === 0);
});
