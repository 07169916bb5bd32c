// Every gRPC service of the control plane is registered through guardedService: its request decoders refuse a
// message over the size cap, or one that does not decode, by handing the handler a RejectedMessage, which it answers
// (and audits) with a proper status like any other refusal instead of a transport error. A request grpc-js refuses
// to read at all (too large, not inflating, two messages on a single-request method) reaches the handler the same
// way (read-refusal.ts).
import type * as grpc from '@grpc/grpc-js';

/** What the wrapped deserializer hands over instead of a message it refused to decode. */
export class RejectedMessage {
  constructor(
    readonly code: 'TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE' | 'TESSERA_ERR_ISSUANCE_BAD_REQUEST',
    /** Bytes of the refused message, when the refusal knows them (not for a malformed stream of messages). */
    readonly size: number | undefined,
  ) {}
}

/**
 * A copy of a service definition whose request decoders refuse messages over `maxBytes` or that do not decode,
 * yielding a RejectedMessage the handler answers (and audits) like any other refusal.
 */
export function guardedService(def: grpc.ServiceDefinition, maxBytes: number): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, m] of Object.entries(def)) {
    const decode = m.requestDeserialize;
    out[name] = {
      ...m,
      requestDeserialize: (buf: Buffer) => {
        if (buf.length > maxBytes) return new RejectedMessage('TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE', buf.length);
        try {
          return decode(buf);
        } catch {
          return new RejectedMessage('TESSERA_ERR_ISSUANCE_BAD_REQUEST', buf.length);
        }
      },
    };
  }
  return out as grpc.ServiceDefinition;
}
