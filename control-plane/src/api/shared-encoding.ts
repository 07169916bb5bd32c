// Server-streaming responses that many streams send as the very same object (Config/Watch: one snapshot per SPIFFE
// ID and version, snapshot-cache.ts) are encoded once, not once per stream: the encoding is remembered per object
// (weakly: it goes with the object). grpc-js copies the bytes into its own frame, so sharing them is safe.
import type * as grpc from '@grpc/grpc-js';

/** A copy of `def` whose server-streaming methods encode a response object once, however many streams write it. */
export function sharedResponseEncoding(def: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, m] of Object.entries(def)) {
    if (!m.responseStream) {
      out[name] = m;
      continue;
    }
    const encode = m.responseSerialize;
    const encoded = new WeakMap<object, Buffer>();
    out[name] = {
      ...m,
      responseSerialize: (value: unknown) => {
        if (typeof value !== 'object' || value === null) return encode(value);
        let bytes = encoded.get(value);
        if (!bytes) {
          bytes = encode(value);
          encoded.set(value, bytes);
        }
        return bytes;
      },
    };
  }
  return out as grpc.ServiceDefinition;
}
