// What a gRPC peer sees for a Tessera error: the status each code maps to (the table below is the contract the
// proxies and the CLI act on), the stable code in the "tessera-error-code" metadata, and the catalogue text only:
// the message and details a TesseraError carries internally never reach the peer.
import * as grpc from '@grpc/grpc-js';
import { describe, expect, test } from 'vitest';
import { ERROR_CODE_METADATA } from '../../../../common/contract/error-metadata.js';
import { type ErrorCode, TesseraError } from '../../../../common/errors.js';
import { toGrpcError } from '../../../../control-plane/src/api/grpc-status.js';

const S = grpc.status;
const EXPECTED: readonly (readonly [ErrorCode, grpc.status])[] = [
  ['TESSERA_ERR_ATTESTATION_NO_EVIDENCE', S.UNAUTHENTICATED],
  ['TESSERA_ERR_ATTESTATION_TOKEN_UNKNOWN', S.UNAUTHENTICATED],
  ['TESSERA_ERR_ATTESTATION_TOKEN_USED', S.UNAUTHENTICATED],
  ['TESSERA_ERR_ATTESTATION_TOKEN_EXPIRED', S.UNAUTHENTICATED],
  ['TESSERA_ERR_ATTESTATION_TOKEN_REVOKED', S.UNAUTHENTICATED],
  ['TESSERA_ERR_ATTESTATION_JWT_INVALID', S.UNAUTHENTICATED],
  ['TESSERA_ERR_ATTESTATION_SVID_INVALID', S.UNAUTHENTICATED],
  ['TESSERA_ERR_ATTESTATION_DISABLED', S.UNAUTHENTICATED],
  ['TESSERA_ERR_ATTESTATION_JWKS_UNREADABLE', S.UNAVAILABLE],
  ['TESSERA_ERR_K8S_TOKEN_REJECTED', S.UNAUTHENTICATED],
  ['TESSERA_ERR_K8S_FETCH_FAILED', S.UNAVAILABLE],
  ['TESSERA_ERR_K8S_DISCOVERY_INVALID', S.UNAVAILABLE],
  ['TESSERA_ERR_ISSUANCE_RATE_LIMITED', S.RESOURCE_EXHAUSTED],
  ['TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE', S.RESOURCE_EXHAUSTED],
  ['TESSERA_ERR_ISSUANCE_RESERVED_ID', S.PERMISSION_DENIED],
  ['TESSERA_ERR_REVOCATION_ID_BANNED', S.PERMISSION_DENIED],
  ['TESSERA_ERR_REVOCATION_SERIAL_BANNED', S.PERMISSION_DENIED],
  ['TESSERA_ERR_ISSUANCE_INTERNAL', S.INTERNAL],
  ['TESSERA_ERR_CSR_MALFORMED', S.INVALID_ARGUMENT],
  ['TESSERA_ERR_CSR_BAD_SIGNATURE', S.INVALID_ARGUMENT],
  ['TESSERA_ERR_PKI_UNSUPPORTED_KEY', S.INVALID_ARGUMENT],
  ['TESSERA_ERR_ISSUANCE_BAD_REQUEST', S.INVALID_ARGUMENT],
  ['TESSERA_ERR_ISSUANCE_CSR_FOREIGN_SAN', S.INVALID_ARGUMENT],
  ['TESSERA_ERR_ISSUANCE_CSR_REQUESTS_CA', S.INVALID_ARGUMENT],
];

describe('toGrpcError', () => {
  test.each(EXPECTED)('%s → status %i, the code in the metadata', (code, status) => {
    const e = toGrpcError(new TesseraError(code));
    expect(e.code).toBe(status);
    expect(e.metadata.get(ERROR_CODE_METADATA)).toEqual([code]);
    expect(e.details.startsWith(`${code}: `)).toBe(true);
  });

  test('the peer reads the catalogue text, never the internal message or details', () => {
    const e = toGrpcError(new TesseraError('TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE', 'read /var/lib/tessera/secret.key: 70000 bytes', { file: '/var/lib/tessera/secret.key' }));
    expect(e.details).toBe('TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE: The request is larger than the control plane accepts.');
    expect(JSON.stringify(e.metadata.getMap())).not.toContain('secret');
  });

  test('anything that is not a TesseraError is an internal fault, with no detail', () => {
    for (const thrown of [new Error('ENOENT /etc/shadow'), 'boom', undefined]) {
      const e = toGrpcError(thrown);
      expect([e.code, e.metadata.get(ERROR_CODE_METADATA)[0]]).toEqual([S.INTERNAL, 'TESSERA_ERR_ISSUANCE_INTERNAL']);
      expect(e.details).not.toMatch(/ENOENT|boom/);
    }
  });
});
