// Server-streaming responses that many streams send as the very same object (Config/Watch: one snapshot per SPIFFE
// ID and version, snapshot-cache.ts) are encoded once, not once per stream: the encoding is remembered per object
// (weakly: it goes with the object). grpc-js copies the bytes into its own frame, so sharing them is safe. A message
// that already carries its encoding (withEncoding: a snapshot spliced from pieces encoded once for every caller,
// config-snapshot.ts) is not encoded again.
import type * as grpc from '@grpc/grpc-js';

const ENCODED: unique symbol = Symbol('tessera.encoded');

/** `message`, carrying `bytes` as its encoding (not enumerable: equality and the encoder do not see it). */
export function withEncoding<T extends object>(message: T, bytes: Buffer): T {
  Object.defineProperty(message, ENCODED, { value: bytes, enumerable: false });
  return message;
}

/** The encoding a message carries (withEncoding), if any. */
export function carriedEncoding(message: object): Buffer | undefined {
  const bytes = (message as { [ENCODED]?: unknown })[ENCODED];
  return Buffer.isBuffer(bytes) ? bytes : undefined;
}

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
        let bytes = carriedEncoding(value) ?? encoded.get(value);
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
