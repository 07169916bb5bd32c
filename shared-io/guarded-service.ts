// A gRPC service registered through guardedService has request decoders that refuse a message over the size cap, or
// one that does not decode (proto-wire-check.ts's malformed bytes, a string that is not UTF-8), by handing the
// handler a RejectedMessage, which it answers (and counts) with a proper status like any other refusal. Left to
// grpc-js, a decoder's throw is answered INTERNAL with grpc-js's own text and the handler never runs. Shared by
// the control plane (its codes: TESSERA_ERR_ISSUANCE_*) and the proxy's Workload API, which may not import it.
import type * as grpc from '@grpc/grpc-js';
import type { ErrorCode } from '../common/errors.js';

/** What the wrapped deserializer hands over instead of a message it refused to decode. */
export class RejectedMessage<C extends ErrorCode = ErrorCode> {
  constructor(
    readonly code: C,
    /** Bytes of the refused message, when the refusal knows them (not for a malformed stream of messages). */
    readonly size: number | undefined,
  ) {}
}

/** How a service's requests are refused: the code of one that does not decode, and optionally a size cap and its code. */
export interface RequestGuard<C extends ErrorCode> {
  readonly malformed: C;
  /** Absent: grpc-js's own receive limit is the only cap (its RESOURCE_EXHAUSTED answer stands). */
  readonly cap?: { readonly maxBytes: number; readonly code: C };
}

/**
 * A copy of a service definition whose request decoders refuse messages that do not decode (or are over the cap),
 * yielding a RejectedMessage the handler answers like any other refusal.
 */
export function guardedService<C extends ErrorCode>(def: grpc.ServiceDefinition, guard: RequestGuard<C>): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, m] of Object.entries(def)) {
    const decode = m.requestDeserialize;
    out[name] = {
      ...m,
      requestDeserialize: (buf: Buffer) => {
        if (guard.cap !== undefined && buf.length > guard.cap.maxBytes) return new RejectedMessage(guard.cap.code, buf.length);
        try {
          return decode(buf);
        } catch {
          return new RejectedMessage(guard.malformed, buf.length);
        }
      },
    };
  }
  return out as grpc.ServiceDefinition;
}
