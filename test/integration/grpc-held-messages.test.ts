// Request messages begun and never finished, on the control plane's gRPC port (audit 55c F1): a TLS client with no
// certificate opened 100 SignSvid streams per connection, sent each a message prefix declaring ~262,000 bytes and all
// but the last 1,000 of them, and stopped: grpc-js buffered every one (returning flow-control credit as it did), no
// deadline covered a message after its call's headers and the 60 s idle close waits for calls in progress, so each
// connection pinned ~26-33 MB for as long as the client liked (10 connections: RSS 135 -> 465 MB), nothing counted.
// Now a message once begun must arrive whole within limits.headersTimeout (else its stream is reset CANCEL, counted
// message_timeout), and a stream whose DATA would take the connection's unfinished messages past 2 x the largest
// message read is reset REFUSED_STREAM at once (message_bytes); a renewal on another connection is answered
// meanwhile, a message trickled in small DATA frames within the deadline is read, and a stream holding a whole message
// open past the deadline is not cut. Real control plane process, raw node:http2 client over real TLS, on loopback.

import { readFile } from 'node:fs/promises';
import * as http2 from 'node:http2';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { SIGN_SVID_PATH } from '../../common/contract/identity-v1.js';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair } from '../../common/pki/keys.js';
import { type ClientSvid, controlPlaneClients, joinTokenSvid, type RunningControlPlane, signSvid, startControlPlaneProcess, TD, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { sumSeries } from '../helpers/prom-metrics.js';
import { makeTempDir } from '../helpers/run.js';
import { until } from '../helpers/until.js';

const DEADLINE_S = 3;
const [REFUSED_STREAM, CANCEL] = [http2.constants.NGHTTP2_REFUSED_STREAM, http2.constants.NGHTTP2_CANCEL];
/** The control plane's largest message read: 4 x limits.maxRequestBytes (64 KiB by default). */
const MAX_READ = 4 * 64 * 1024;

let cleanup: () => Promise<void>;
let cp: RunningControlPlane;
let bundlePem: string;
let svid: ClientSvid;

beforeAll(async () => {
  let dir: string;
  ({ dir, cleanup } = await makeTempDir());
  cp = await startControlPlaneProcess(dir, await writeControlPlaneConfig(dir, `limits: { headersTimeout: ${DEADLINE_S}s }\nsvid: { rateLimit: { burst: 1000, perMinute: 60000 } }`));
  bundlePem = await readFile(join(cp.dataDir, 'bundle.pem'), 'utf8');
  svid = await joinTokenSvid(cp, bundlePem, `spiffe://${TD}/ns/default/sa/web`);
}, 60_000);

afterAll(async () => {
  await cp?.stop();
  await cleanup?.();
});

const rejected = async (reason: string) => sumSeries(await (await fetch(`http://${cp.admin}/metrics`)).text(), 'tessera_grpc_requests_rejected_total', { reason });
const badRequests = async () => sumSeries(await (await fetch(`http://${cp.admin}/metrics`)).text(), 'tessera_issuance_refusals_total', { code: 'TESSERA_ERR_ISSUANCE_BAD_REQUEST' });

/** A raw HTTP/2 connection to the gRPC port over TLS, with no client certificate. */
function anonymous(): http2.ClientHttp2Session {
  const s = http2.connect(`https://${cp.grpc}`, { rejectUnauthorized: false, servername: 'tessera-control-plane' });
  s.on('error', () => undefined);
  return s;
}

/** A gRPC message prefix declaring `declared` bytes, then `body` of them. */
const message = (declared: number, body: number) => {
  const b = Buffer.alloc(5 + body, 0x0a);
  b[0] = 0;
  b.writeUInt32BE(declared, 1);
  return b;
};

function signStream(s: http2.ClientHttp2Session): { stream: http2.ClientHttp2Stream; closed: Promise<{ rst: number; grpc: string | undefined }> } {
  const stream = s.request({ ':method': 'POST', ':path': SIGN_SVID_PATH, 'content-type': 'application/grpc', te: 'trailers' });
  stream.on('error', () => undefined);
  let grpc: string | undefined;
  stream.on('response', (h) => {
    grpc ??= h['grpc-status'] as string | undefined;
  });
  stream.on('trailers', (h) => {
    grpc = h['grpc-status'] as string | undefined;
  });
  stream.on('data', () => undefined);
  const closed = new Promise<{ rst: number; grpc: string | undefined }>((resolve) => stream.once('close', () => resolve({ rst: stream.rstCode ?? 0, grpc })));
  return { stream, closed };
}

test('partial messages on 8 streams: those past 2 x the largest read refused at once, the rest reset at the deadline, both counted; a renewal answered meanwhile', async () => {
  const [bytesBefore, timeoutBefore] = [await rejected('message_bytes'), await rejected('message_timeout')];
  const s = anonymous();
  // 8 x 150,000 bytes of 200,000-byte messages: 3 fit under 2 x 262,144 held on one connection.
  const streams = Array.from({ length: 8 }, () => signStream(s));
  for (const { stream } of streams) stream.write(message(200_000, 150_000));
  const mtls = controlPlaneClients(cp.grpc, bundlePem, svid);
  try {
    const renewed = await signSvid(mtls.identity, { csr: await createCsr(generateKeyPair(), {}) });
    expect(renewed.err).toBeNull();
    expect(renewed.res?.spiffe_id).toBe(`spiffe://${TD}/ns/default/sa/web`);
  } finally {
    mtls.close();
  }
  const ends = await Promise.race([Promise.all(streams.map((x) => x.closed)), new Promise<'held'>((r) => setTimeout(() => r('held'), (DEADLINE_S + 15) * 1000))]);
  s.destroy();
  expect(ends).not.toBe('held');
  const codes = (ends as { rst: number }[]).map((e) => e.rst);
  expect(codes.filter((c) => c === REFUSED_STREAM).length).toBe(8 - Math.floor((2 * MAX_READ) / 150_005));
  expect(codes.filter((c) => c === CANCEL).length).toBe(Math.floor((2 * MAX_READ) / 150_005));
  await until('both resets counted', async () => (await rejected('message_bytes')) - bytesBefore === 5 && (await rejected('message_timeout')) - timeoutBefore === 3);
}, 40_000);

test('many connections: the resets hold across them (each connection its own bound), every stream ends', async () => {
  const timeoutBefore = await rejected('message_timeout');
  const sessions = Array.from({ length: 4 }, () => anonymous());
  const streams = sessions.flatMap((s) => Array.from({ length: 20 }, () => signStream(s)));
  for (const { stream } of streams) stream.write(message(MAX_READ, MAX_READ - 1_000));
  const ends = await Promise.race([Promise.all(streams.map((x) => x.closed)), new Promise<'held'>((r) => setTimeout(() => r('held'), (DEADLINE_S + 15) * 1000))]);
  for (const s of sessions) s.destroy();
  expect(ends).not.toBe('held');
  const codes = (ends as { rst: number }[]).map((e) => e.rst);
  expect(codes.every((c) => c === REFUSED_STREAM || c === CANCEL)).toBe(true);
  // Two of each connection's messages fit its bound and are held until the deadline.
  expect(codes.filter((c) => c === CANCEL).length).toBe(8);
  await until('timeouts counted', async () => (await rejected('message_timeout')) - timeoutBefore === 8);
}, 40_000);

test('a message trickled in small DATA frames within the deadline is read; a whole message held open past it is not cut', async () => {
  const timeoutBefore = await rejected('message_timeout');
  const s = anonymous();
  try {
    // Whole, then the stream left open (no END_STREAM) for the deadline and two sweeps: nothing unfinished to time.
    const idle = signStream(s);
    idle.stream.write(message(3, 3));
    const early = await Promise.race([idle.closed, new Promise<'open'>((r) => setTimeout(() => r('open'), (DEADLINE_S + 2) * 1000))]);
    expect(early).toBe('open');
    idle.stream.end();
    expect((await idle.closed).grpc).toBeDefined();
    // 40 DATA frames of 10 bytes, 20 ms apart: under a second, a third of the deadline.
    const slow = signStream(s);
    const body = message(395, 395);
    for (let i = 0; i < body.length; i += 10) {
      slow.stream.write(body.subarray(i, i + 10));
      await new Promise((r) => setTimeout(r, 20));
    }
    slow.stream.end();
    const answer = await slow.closed;
    expect(answer.rst).toBe(0);
    expect(answer.grpc).toBeDefined();
    expect((await rejected('message_timeout')) - timeoutBefore).toBe(0);
  } finally {
    s.destroy();
  }
}, 30_000);

// Audit 60g F2: a call's HEADERS and no message at all. No deadline covered it (a message's clock started at its
// first byte), grpc-js's idle close waits for calls in progress, and the connection counted as busy at the cap for as
// long as the client liked. The first message is now timed from the HEADERS.
test('a call that sends its HEADERS and never a message is reset at the deadline, counted message_timeout (and not again as a bad request)', async () => {
  const timeoutBefore = await rejected('message_timeout');
  const badBefore = await badRequests();
  const s = anonymous();
  const streams = Array.from({ length: 4 }, () => signStream(s));
  const ends = await Promise.race([Promise.all(streams.map((x) => x.closed)), new Promise<'held'>((r) => setTimeout(() => r('held'), (DEADLINE_S + 15) * 1000))]);
  s.destroy();
  expect(ends).not.toBe('held');
  expect((ends as { rst: number }[]).map((e) => e.rst)).toEqual([CANCEL, CANCEL, CANCEL, CANCEL]);
  await until('the resets counted', async () => (await rejected('message_timeout')) - timeoutBefore === 4);
  // Audit 61b F3: the reset ended the call's reading, which read as a request with no message: also counted (and
  // audited, caller unknown) as TESSERA_ERR_ISSUANCE_BAD_REQUEST.
  await new Promise((r) => setTimeout(r, 300));
  expect((await badRequests()) - badBefore).toBe(0);
}, 40_000);
