// Maps Tessera error codes to gRPC status codes in one place, and carries the stable code to the caller in the
// metadata key "tessera-error-code". Messages are the catalogue text: no internal detail reaches a peer.
import * as grpc from '@grpc/grpc-js';
import { ERROR_CODE_METADATA } from '../../../common/contract/error-metadata.js';
import { ERROR_CATALOGUE, type ErrorCode, isTesseraError } from '../../../common/errors.js';

export function grpcStatusFor(code: ErrorCode): grpc.status {
  if (code.startsWith('TESSERA_ERR_ATTESTATION_')) {
    return code === 'TESSERA_ERR_ATTESTATION_JWKS_UNREADABLE' ? grpc.status.UNAVAILABLE : grpc.status.UNAUTHENTICATED;
  }
  switch (code) {
    case 'TESSERA_ERR_K8S_TOKEN_REJECTED':
      return grpc.status.UNAUTHENTICATED;
    case 'TESSERA_ERR_K8S_FETCH_FAILED':
    case 'TESSERA_ERR_K8S_DISCOVERY_INVALID':
      return grpc.status.UNAVAILABLE;
    case 'TESSERA_ERR_ISSUANCE_RATE_LIMITED':
    case 'TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE':
      return grpc.status.RESOURCE_EXHAUSTED;
    case 'TESSERA_ERR_ISSUANCE_RESERVED_ID':
    case 'TESSERA_ERR_REVOCATION_ID_BANNED':
    case 'TESSERA_ERR_REVOCATION_SERIAL_BANNED':
      return grpc.status.PERMISSION_DENIED;
    case 'TESSERA_ERR_ISSUANCE_INTERNAL':
      return grpc.status.INTERNAL;
    case 'TESSERA_ERR_CSR_MALFORMED':
    case 'TESSERA_ERR_CSR_BAD_SIGNATURE':
    case 'TESSERA_ERR_PKI_UNSUPPORTED_KEY':
    case 'TESSERA_ERR_ISSUANCE_BAD_REQUEST':
    case 'TESSERA_ERR_ISSUANCE_CSR_FOREIGN_SAN':
    case 'TESSERA_ERR_ISSUANCE_CSR_REQUESTS_CA':
      return grpc.status.INVALID_ARGUMENT;
    default:
      return grpc.status.INTERNAL;
  }
}

/** A ServiceError-shaped object for callback(err) / call.emit('error'). */
export function toGrpcError(e: unknown): Partial<grpc.StatusObject> & { code: grpc.status; details: string; metadata: grpc.Metadata } {
  const code: ErrorCode = isTesseraError(e) ? e.code : 'TESSERA_ERR_ISSUANCE_INTERNAL';
  const metadata = new grpc.Metadata();
  metadata.set(ERROR_CODE_METADATA, code);
  return { code: grpcStatusFor(code), details: `${code}: ${ERROR_CATALOGUE[code]}`, metadata };
}
