// What makes an HTTP/2 stream a gRPC call: its content-type in any case (media types are case-insensitive), so that
// no spelling of it escapes the gRPC rules (never replayed by a retry, errors as trailers) — an outside audit sent
// `Application/grpc` through a `retryable: true` listener and saw the call reach two apps.
import { describe, expect, test } from 'vitest';
import { isGrpcContentType } from '../../../../proxy/src/h2/h2-heads.js';

describe('isGrpcContentType', () => {
  test.each(['application/grpc', 'application/grpc+proto', 'application/grpc+json', 'Application/grpc', 'APPLICATION/GRPC+PROTO', 'application/gRPC; charset=utf-8'])('%s is gRPC', (v) => {
    expect(isGrpcContentType(v)).toBe(true);
  });

  test.each([undefined, '', 'application/json', 'application/grp', 'text/application/grpc', ' application/grpc'])('%s is not', (v) => {
    expect(isGrpcContentType(v)).toBe(false);
  });

  test('a repeated field (an array) is not a content-type node:http2 would give a gRPC call', () => {
    expect(isGrpcContentType(['application/grpc', 'application/grpc'])).toBe(false);
  });
});
