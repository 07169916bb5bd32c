// How a TypeScript message declaration names the wire kind of each field, so the compiler ties a FIELDS table to
// its interface and the drift test ties the table to the .proto (test/unit/common/contract/proto-drift.test.ts).

/** A proto int64 as @grpc/proto-loader hands it over (longs: String); either form may be sent. */
export type Int64 = string | number;

/** A message-typed field: "message <full proto name>", e.g. "message tessera.identity.v1.TrustBundle". */
export type MessageSpec = `message ${string}`;

/** The wire kind the TypeScript type of a field stands for (a oneof's discriminator is "oneof"). */
export type FieldSpec<T> = [T] extends [Buffer]
  ? 'bytes'
  : [T] extends [readonly (infer E)[]]
    ? `repeated ${FieldSpec<E>}`
    : [T] extends [string]
      ? string extends T
        ? 'string'
        : 'oneof'
      : [T] extends [number]
        ? 'int32' | 'uint32' | 'double'
        : [T] extends [Int64]
        ? 'int64'
        : [T] extends [boolean]
          ? 'bool'
          : [T] extends [Readonly<Record<string, Buffer>>]
            ? 'map<string, bytes>'
            : [T] extends [object]
              ? MessageSpec
              : never;

/** One entry per field of `Msg` (optional and nullable ones included), each naming its wire kind. */
export type FieldsOf<Msg> = { readonly [K in keyof Msg]-?: FieldSpec<NonNullable<Msg[K]>> };

/** One .proto file: its package ("" when it declares none) and each message's FIELDS table by short name. */
export interface ContractFile {
  readonly file: string;
  readonly package: string;
  readonly messages: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

/** A message without fields (WatchRequest, X509SVIDRequest, ...). */
export type EmptyMsg = { readonly [K in never]: never };
