// A request message over grpc-js' own read limit (4 × maxRequestBytes here, as main.ts sets it), plain or gzip
// that inflates past it, gets the control plane's coded answer through the handler's own refusal path, like one
// over maxRequestBytes: RESOURCE_EXHAUSTED, TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE, the refusal hook called with the
// size. Over the real GrpcServer and grpc-js clients; the server keeps serving.
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
