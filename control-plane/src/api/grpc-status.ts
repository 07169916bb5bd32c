// Answers gRPC calls with a Tessera error: the status is the catalogue's for the code (common/errors.ts), and the
// stable code travels in the metadata key "tessera-error-code". Messages are the catalogue text: no internal
// detail reaches a peer.
import * as grpc from '@grpc/grpc-js';
import { ERROR_CODE_METADATA } from '../../../common/contract/error-metadata.js';
import { ERROR_CATALOGUE, type ErrorCode, isTesseraError } from '../../../common/errors.js';

export function grpcStatusFor(code: ErrorCode): grpc.status {
  return ERROR_CATALOGUE[code].grpc;
}

/** A ServiceError-shaped object for callback(err) / call.emit('error'). */
export function toGrpcError(e: unknown): Partial<grpc.StatusObject> & { code: grpc.status; details: string; metadata: grpc.Metadata } {
  const code: ErrorCode = isTesseraError(e) ? e.code : 'TESSERA_ERR_ISSUANCE_INTERNAL';
  const metadata = new grpc.Metadata();
  metadata.set(ERROR_CODE_METADATA, code);
  return { code: grpcStatusFor(code), details: `${code}: ${ERROR_CATALOGUE[code].message}`, metadata };
}
