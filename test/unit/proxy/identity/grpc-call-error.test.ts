// A control plane's gRPC refusal as the proxy logs it (an outside audit: a banned proxy's Config/Watch refusal was
// logged as an SVID request's failure, with the control plane's code twice): the status and the code once, and a
// stream's failure under its own code, and each unary call's under its own (audit 27c F7: a failed report or JWT mint
// was labelled an SVID signing failure).
import { Metadata, status } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { describe, expect, test } from 'vitest';
import { grpcCallError } from '../../../../proxy/src/identity/control-plane-client.js';

function refusal(code: number, details: string, cpCode?: string): ServiceError {
  const metadata = new Metadata();
  if (cpCode) metadata.set('tessera-error-code', cpCode);
  return Object.assign(new Error(details), { code, details, metadata });
}

describe('grpcCallError', () => {
  test("the control plane's code once, before the details that began with it; a stream's failure is STREAM_FAILED", () => {
    const e = refusal(status.PERMISSION_DENIED, 'TESSERA_ERR_REVOCATION_ID_BANNED: The SPIFFE ID is banned.', 'TESSERA_ERR_REVOCATION_ID_BANNED');
    const asStream = grpcCallError(e, 'TESSERA_ERR_IDENTITY_STREAM_FAILED');
    expect(asStream.code).toBe('TESSERA_ERR_IDENTITY_STREAM_FAILED');
    expect(asStream.message).toContain('PERMISSION_DENIED TESSERA_ERR_REVOCATION_ID_BANNED: The SPIFFE ID is banned.');
    expect(asStream.message.match(/TESSERA_ERR_REVOCATION_ID_BANNED/g)).toHaveLength(1);
    expect(grpcCallError(e, 'TESSERA_ERR_IDENTITY_SIGN_FAILED').code).toBe('TESSERA_ERR_IDENTITY_SIGN_FAILED');
  });

  test('details without the code, or no code at all, are kept whole', () => {
    expect(grpcCallError(refusal(status.UNAUTHENTICATED, 'bad token', 'TESSERA_ERR_ATTESTATION_TOKEN_USED'), 'TESSERA_ERR_IDENTITY_SIGN_FAILED').message).toContain('UNAUTHENTICATED TESSERA_ERR_ATTESTATION_TOKEN_USED: bad token');
    expect(grpcCallError(refusal(status.UNAVAILABLE, 'connect ECONNREFUSED'), 'TESSERA_ERR_REPORT_FAILED').message).toContain('UNAVAILABLE: connect ECONNREFUSED');
  });

  test("grpc-js' empty resolution note is not left dangling at the end (audit 34c); a note with text is kept", () => {
    const empty = 'No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1. Resolution note: ';
    expect(grpcCallError(refusal(status.UNAVAILABLE, empty), 'TESSERA_ERR_IDENTITY_STREAM_FAILED').message).toMatch(/connect ECONNREFUSED 127\.0\.0\.1:1\.$/);
    const noted = 'No addresses resolved. Resolution note: DNS lookup failed';
    expect(grpcCallError(refusal(status.UNAVAILABLE, noted), 'TESSERA_ERR_IDENTITY_STREAM_FAILED').message).toContain('Resolution note: DNS lookup failed');
  });
});
