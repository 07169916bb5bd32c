// The numeric gRPC status codes Tessera answers with (grpc/grpc doc/statuscodes.md), named here so common/ stays
// free of the gRPC library: the error catalogue and the refusal reasons carry these numbers.

export const GRPC_STATUS = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

export type GrpcStatusName = keyof typeof GRPC_STATUS;
export type GrpcStatus = (typeof GRPC_STATUS)[GrpcStatusName];

/** The name of a status number (for docs and logs); undefined for one not in the list. */
export function grpcStatusName(status: number): GrpcStatusName | undefined {
  return (Object.keys(GRPC_STATUS) as GrpcStatusName[]).find((k) => GRPC_STATUS[k] === status);
}
