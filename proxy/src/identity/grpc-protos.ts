// Loads the gRPC contracts in <repo>/proto at run time (from source or from dist/), with proto-loader options
// that keep bytes as Buffers and 64-bit integers as strings.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { TesseraError } from '../../../common/errors.js';

/** Finds the directory holding `proto/<file>` by walking up from this module (works under dist/ too). */
export function protoRoot(file: string, from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (let i = 0; i < 8; i++) {
    const candidate = join(dir, 'proto');
    if (existsSync(join(candidate, file))) return candidate;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new TesseraError('TESSERA_ERR_PROTO_NOT_FOUND', `proto/${file} not found above ${from}`);
}

export const PROTO_LOADER_OPTIONS: protoLoader.Options = Object.freeze({
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  bytes: Buffer,
});

/** Loads one contract file (e.g. "spiffe/workload/workload.proto") as a grpc-js package object. */
export function loadProtoFile(file: string): grpc.GrpcObject {
  const root = protoRoot(file);
  const def = protoLoader.loadSync(file, { ...PROTO_LOADER_OPTIONS, includeDirs: [root] });
  return grpc.loadPackageDefinition(def);
}

/** The service definition at a dotted path in a loaded package ("tessera.identity.v1.Identity"). */
export function serviceAt(pkg: grpc.GrpcObject, path: string): grpc.ServiceClientConstructor {
  let node: unknown = pkg;
  for (const part of path.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
  if (typeof node !== 'function' || !('service' in node)) {
    throw new TesseraError('TESSERA_ERR_PROTO_NOT_FOUND', `service ${path} is not defined by the loaded proto`);
  }
  return node as grpc.ServiceClientConstructor;
}
