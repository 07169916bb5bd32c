// Every gRPC service of the control plane is registered through guardedService (shared-io/guarded-service.ts, which
// the proxy's Workload API uses too): a message over maxRequestBytes is refused TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE
// and one that does not decode TESSERA_ERR_ISSUANCE_BAD_REQUEST, each handed to the handler as a RejectedMessage it
// answers (and audits) like any other refusal. A request grpc-js refuses to read at all (too large, not inflating,
// two messages on a single-request method) reaches the handler the same way (shared-io/read-refusal.ts).
import type * as grpc from '@grpc/grpc-js';
import { guardedService as guarded } from '../../../shared-io/guarded-service.js';

export { RejectedMessage } from '../../../shared-io/guarded-service.js';
// Config/Watch is registered through it too (main.ts).
export { sharedResponseEncoding } from './shared-encoding.js';

/** A copy of `def` whose request decoders hand the handler a RejectedMessage for a message over `maxBytes` or not decoding. */
export function guardedService(def: grpc.ServiceDefinition, maxBytes: number): grpc.ServiceDefinition {
  return guarded(def, { malformed: 'TESSERA_ERR_ISSUANCE_BAD_REQUEST', cap: { maxBytes, code: 'TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE' } });
}
