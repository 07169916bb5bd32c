// The control-traffic bound of an HTTP/2 server session (shared-io/h2-frame-budget.ts, through H2SessionWatch) on a real
// loopback h2c session: WINDOW_UPDATE frames past BASE_BYTES make the session due at once, and expiring it sends
// GOAWAY ENHANCE_YOUR_CALM and counts http2_flood once; fewer do not; a request body of 1 MiB in 100-byte DATA
// frames is the client's request, not control traffic, however little the server wrote back.
import * as http2 from 'node:http2';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, test } from 'vitest';
import type { ProxyLimits } from '../../../../proxy/src/config/proxy-config.js';
import { guardH2Server } from '../../../../proxy/src/h2/h2-error-guard.js';
import { BASE_BYTES } from '../../../../shared-io/h2-frame-budget.js';
import { H2SessionWatch } from '../../../../proxy/src/listeners/h2-server-limits.js';
import { h2Frame, hpackBlock } from '../../../helpers/raw-h2-app.js';
import { until } from '../../../helpers/until.js';
import { realTimers } from '../../../../shared-io/timers.js';

const LIMITS = { headersTimeoutMs: 60_000, idleTimeoutMs: 60_000, maxConcurrentStreams: 100 } as Pick<ProxyLimits, 'headersTimeoutMs' | 'idleTimeoutMs' | 'maxConcurrentStreams'>;
const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

async function session(): Promise<{ socket: net.Socket; watch: () => H2SessionWatch; expired: string[]; frames: number[]; bodyBytes: () => number }> {
  const expired: string[] = [];
  let watch: H2SessionWatch | undefined;
  let bodyBytes = 0;
  const server = http2.createServer();
  guardH2Server(server, realTimers);
  server.on('session', (s) => {
    watch = new H2SessionWatch(s, LIMITS, () => 1_000, (code) => expired.push(code), 'cut');
  });
  server.on('stream', (stream) => {
    stream.on('data', (d: Buffer) => {
      bodyBytes += d.length;
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
  socket.on('error', () => undefined);
  const frames: number[] = [];
  let buf = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
      if (buf[3] === 7) frames.push(buf.readUInt32BE(13)); // GOAWAY: its code
      if (buf[3] === 4 && (buf[4]! & 1) === 0) socket.write(h2Frame(4, 1, 0));
      buf = buf.subarray(9 + buf.readUIntBE(0, 3));
    }
  });
  closers.push(() => {
    socket.destroy();
    server.close();
  });
  socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), h2Frame(4, 0, 0)]));
  await until('the session', () => watch !== undefined, 5_000, 10);
  return { socket, watch: () => watch!, expired, frames, bodyBytes: () => bodyBytes };
}

const increments = (n: number) => Buffer.concat(Array.from({ length: n }, () => h2Frame(8, 0, 0, Buffer.from([0, 0, 0, 1]))));

test('WINDOW_UPDATE frames past the base allowance: due now, then GOAWAY ENHANCE_YOUR_CALM, counted once as http2_flood', async () => {
  const s = await session();
  const n = Math.ceil(BASE_BYTES / 13) + 500;
  s.socket.write(increments(n));
  await until('the frames read', () => s.watch().deadlineMs === 0, 5_000, 10);
  s.watch().expire();
  await until('the GOAWAY', () => s.frames.length > 0, 5_000, 10);
  expect(s.frames).toEqual([http2.constants.NGHTTP2_ENHANCE_YOUR_CALM]);
  expect(s.expired).toEqual(['http2_flood']);
});

test('fewer WINDOW_UPDATE frames than the base allowance: nothing due', async () => {
  const s = await session();
  s.socket.write(increments(Math.floor(BASE_BYTES / 13) - 500));
  await new Promise((r) => setTimeout(r, 300));
  expect(s.watch().deadlineMs).toBeGreaterThan(1_000);
  expect(s.expired).toEqual([]);
});

test('a 1 MiB request body in 100-byte DATA frames is not control traffic', async () => {
  const s = await session();
  const head = hpackBlock([[':method', 'POST'], [':scheme', 'http'], [':path', '/up'], [':authority', 'a']]);
  const piece = h2Frame(0, 0, 1, Buffer.alloc(100, 0x61));
  // Within the stream's and the connection's 64 KiB windows at a time: the server's WINDOW_UPDATEs open them again.
  s.socket.write(h2Frame(1, 4, 1, head));
  for (let sent = 0; sent < 10_000; sent += 500) {
    s.socket.write(Buffer.concat(Array.from({ length: 500 }, () => piece)));
    await until('the body read', () => s.bodyBytes() >= (sent + 500) * 100, 5_000, 5);
  }
  expect(s.watch().deadlineMs).toBeGreaterThan(1_000);
  expect(s.expired).toEqual([]);
});
