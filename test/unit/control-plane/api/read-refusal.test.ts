// Requests grpc-js refuses to read get the control plane's coded answer through the handler's own refusal path,
// like one over maxRequestBytes: a message over grpc-js' own read limit (4 × maxRequestBytes here, as main.ts sets
// it), plain or gzip that inflates past it (RESOURCE_EXHAUSTED, TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE, the refusal
// hook called with the size); a compressed message that does not inflate or names an unknown encoding, and two
// messages or none on a single-request method (INVALID_ARGUMENT, TESSERA_ERR_ISSUANCE_BAD_REQUEST, the hook called).
// Over the real GrpcServer, grpc-js clients and raw HTTP/2 streams; the server keeps serving.
import { connect as h2connect, constants as h2 } from 'node:http2';
import { gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, test } from 'vitest';
import { SIGN_SVID_PATH } from '../../../../common/contract/identity-v1.js';
import { WATCH_PATH } from '../../../../common/contract/config-v1.js';
import { enroll } from '../../../helpers/api-client.js';
import { type RunningApi, apiPerFile } from '../../../helpers/control-plane-parts.js';
import { type ClientSvid, errorCode } from '../../../helpers/control-plane.js';
import { FakeTime } from '../../../helpers/fake-time.js';

const MAX = 4096;
/** What grpc-js reads of one message at most: startTestApi sets 4 × maxRequestBytes, as main.ts does. */
const GRPC_LIMIT = 4 * MAX;
const TOO_LARGE = [grpc.status.RESOURCE_EXHAUSTED, 'TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE'];

/** Sends `body` as it is as the request of `path` (unary, or the one request of a server stream); the error it ends with. */
function rawCall(api: RunningApi, path: string, body: Buffer, o: { svid?: ClientSvid; gzip?: boolean } = {}): Promise<grpc.ServiceError | null> {
  // The channel options of the helper's clients (test/helpers/control-plane.ts), with gzip when asked.
  const creds = grpc.credentials.createSsl(Buffer.from(api.bundlePem()), o.svid ? Buffer.from(o.svid.keyPem) : null, o.svid ? Buffer.from(o.svid.chainPem) : null, { checkServerIdentity: () => undefined });
  const c = new grpc.Client(api.server.address, creds, {
    'grpc.ssl_target_name_override': 'tessera-control-plane',
    'grpc.default_authority': 'tessera-control-plane',
    ...(o.gzip ? { 'grpc.default_compression_algorithm': grpc.compressionAlgorithms.gzip } : {}),
  });
  const raw = (b: Buffer) => b;
  const options = { deadline: Date.now() + 10_000 };
  return new Promise<grpc.ServiceError | null>((resolve) => {
    if (path === SIGN_SVID_PATH) {
      c.makeUnaryRequest(path, raw, raw, body, options, (e: grpc.ServiceError | null) => resolve(e));
      return;
    }
    const call = c.makeServerStreamRequest(path, raw, raw, body, options);
    // A stream that was not refused sends its snapshot: no error, and the test fails on that.
    call.on('data', () => {
      call.cancel();
      resolve(null);
    });
    call.on('error', (e: grpc.ServiceError) => resolve(e));
  }).finally(() => c.close());
}

describe('requests over grpc-js read limit', () => {
  const time = new FakeTime(Math.floor(Date.now() / 1000) * 1000);
  const t = apiPerFile(time, { maxRequestBytes: MAX });

  test('SignSvid: just over, far over, and gzip inflating past it all get the coded answer and reach the refusal hook', async () => {
    t.api.rejected.length = 0;
    for (const size of [MAX + 1, GRPC_LIMIT, GRPC_LIMIT + 1, 1 << 20]) {
      const err = await rawCall(t.api, SIGN_SVID_PATH, Buffer.alloc(size, 0x30));
      expect([err?.code, errorCode(err)], `${size} bytes`).toEqual(TOO_LARGE);
      expect(err?.details).toBe('TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE: The request is larger than the control plane accepts.');
    }
    // A few hundred bytes on the wire: one inflating past maxRequestBytes, one past grpc-js' limit.
    for (const size of [MAX + 1, 1 << 20]) {
      const err = await rawCall(t.api, SIGN_SVID_PATH, Buffer.alloc(size, 0x30), { gzip: true });
      expect([err?.code, errorCode(err)], `gzip ${size} bytes`).toEqual(TOO_LARGE);
    }
    expect(t.api.rejected).toEqual([
      { code: 'TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE', size: MAX + 1 },
      { code: 'TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE', size: GRPC_LIMIT },
      { code: 'TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE', size: GRPC_LIMIT + 1 },
      { code: 'TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE', size: 1 << 20 },
      { code: 'TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE', size: MAX + 1 },
      // Inflation stops at the limit: the size recorded is the least it can be.
      { code: 'TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE', size: GRPC_LIMIT + 1 },
    ]);
    // The server keeps serving on new connections.
    expect((await enroll(t.api, time.nowMs())).answer.err).toBeNull();
  });

  test('Config/Watch refuses an oversized request (over either limit) instead of serving the stream', async () => {
    const { svid } = await enroll(t.api, time.nowMs());
    for (const size of [MAX + 1, 1 << 20]) {
      const err = await rawCall(t.api, WATCH_PATH, Buffer.alloc(size, 0x30), { svid });
      expect([err?.code, errorCode(err)], `${size} bytes`).toEqual(TOO_LARGE);
    }
    // An ordinary (empty) request is still served.
    expect(await rawCall(t.api, WATCH_PATH, Buffer.alloc(0), { svid })).toBeNull();
  });
});

const BAD_REQUEST = [grpc.status.INVALID_ARGUMENT, 'TESSERA_ERR_ISSUANCE_BAD_REQUEST'];

/** Sends `messages` (each its own gRPC message) on `path` as a client stream, whatever the method's shape; the error it ends with. */
function streamCall(api: RunningApi, path: string, messages: Buffer[], svid?: ClientSvid): Promise<grpc.ServiceError | null> {
  const creds = grpc.credentials.createSsl(Buffer.from(api.bundlePem()), svid ? Buffer.from(svid.keyPem) : null, svid ? Buffer.from(svid.chainPem) : null, { checkServerIdentity: () => undefined });
  const c = new grpc.Client(api.server.address, creds, { 'grpc.ssl_target_name_override': 'tessera-control-plane', 'grpc.default_authority': 'tessera-control-plane' });
  const raw = (b: Buffer) => b;
  return new Promise<grpc.ServiceError | null>((resolve) => {
    const call = c.makeClientStreamRequest(path, raw, raw, { deadline: Date.now() + 10_000 }, (e: grpc.ServiceError | null) => resolve(e));
    for (const m of messages) call.write(m);
    call.end();
  }).finally(() => c.close());
}

/** One gRPC message framed by hand: flag byte, length, bytes (`declared` may lie about the length). */
function frame(flag: number, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(flag, 0);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** A raw HTTP/2 gRPC request with `encoding` and `data`; the grpc-status and tessera-error-code it ends with. */
function rawH2(api: RunningApi, path: string, encoding: string, data: Buffer): Promise<[number, string | undefined]> {
  const session = h2connect(`https://${api.server.address}`, { ca: api.bundlePem(), servername: 'tessera-control-plane', checkServerIdentity: () => undefined });
  return new Promise<[number, string | undefined]>((resolve, reject) => {
    session.on('error', reject);
    const req = session.request({ [h2.HTTP2_HEADER_METHOD]: 'POST', [h2.HTTP2_HEADER_PATH]: path, 'content-type': 'application/grpc', te: 'trailers', 'grpc-encoding': encoding });
    let status: [number, string | undefined] | undefined;
    const read = (h: Record<string, unknown>) => {
      if (h['grpc-status'] !== undefined) status = [Number(h['grpc-status']), h['tessera-error-code'] as string | undefined];
    };
    req.on('response', read);
    req.on('trailers', read);
    req.on('error', reject);
    req.resume();
    req.on('close', () => (status ? resolve(status) : reject(new Error('no grpc-status'))));
    req.end(data);
  }).finally(() => session.close());
}

describe('requests grpc-js cannot read', () => {
  const time = new FakeTime(Math.floor(Date.now() / 1000) * 1000);
  const t = apiPerFile(time, { maxRequestBytes: MAX });

  test('SignSvid: two, many or no messages on the single-request method get the coded answer and reach the refusal hook', async () => {
    t.api.rejected.length = 0;
    for (const n of [2, 3, 1000, 0]) {
      const err = await streamCall(t.api, SIGN_SVID_PATH, Array.from({ length: n }, () => Buffer.alloc(0)));
      expect([err?.code, errorCode(err)], `${n} messages`).toEqual(BAD_REQUEST);
    }
    expect(t.api.rejected).toEqual(Array.from({ length: 4 }, () => ({ code: 'TESSERA_ERR_ISSUANCE_BAD_REQUEST', size: undefined })));
    // One message is a request as ever (an empty one: no CSR).
    const one = await streamCall(t.api, SIGN_SVID_PATH, [Buffer.alloc(0)]);
    expect([one?.code, errorCode(one)]).toEqual(BAD_REQUEST);
    expect((await enroll(t.api, time.nowMs())).answer.err).toBeNull();
  });

  test('Config/Watch: two messages or none are refused, coded, instead of grpc-js UNIMPLEMENTED', async () => {
    const { svid } = await enroll(t.api, time.nowMs());
    for (const n of [2, 0]) {
      const err = await streamCall(t.api, WATCH_PATH, Array.from({ length: n }, () => Buffer.alloc(0)), svid);
      expect([err?.code, errorCode(err)], `${n} messages`).toEqual(BAD_REQUEST);
    }
    expect(await rawCall(t.api, WATCH_PATH, Buffer.alloc(0), { svid })).toBeNull();
  });

  test('a compressed message that does not inflate, or names an encoding grpc-js lacks, is refused coded', async () => {
    t.api.rejected.length = 0;
    const gz = gzipSync(Buffer.alloc(64, 0x30));
    const cases: [string, string, Buffer][] = [
      ['corrupt gzip', 'gzip', frame(1, Buffer.from('not gzip at all'))],
      ['truncated gzip', 'gzip', frame(1, gz.subarray(0, gz.length - 9))],
      ['gzip with trailing garbage', 'gzip', frame(1, Buffer.concat([gz, Buffer.from('garbage')]))],
      ['corrupt deflate', 'deflate', frame(1, Buffer.from([0xff, 0xff, 0xff, 0xff]))],
      ['unknown encoding', 'xz', frame(1, Buffer.from('abc'))],
    ];
    for (const [name, encoding, data] of cases) {
      expect(await rawH2(t.api, SIGN_SVID_PATH, encoding, data), name).toEqual([grpc.status.INVALID_ARGUMENT, 'TESSERA_ERR_ISSUANCE_BAD_REQUEST']);
    }
    expect(t.api.rejected.map((r) => r.code)).toEqual(cases.map(() => 'TESSERA_ERR_ISSUANCE_BAD_REQUEST'));
    expect((await enroll(t.api, time.nowMs())).answer.err).toBeNull();
  });
});
