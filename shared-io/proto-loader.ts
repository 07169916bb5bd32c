// The one loader of the gRPC contracts in <repo>/proto (proxy, control plane, bench and tests): finds proto/ from
// the source tree or from dist/, with options that keep bytes as Buffers and 64-bit integers as strings, the
// shapes common/contract/ declares.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { CONFIG_PROTO, CONFIG_SERVICE } from '../common/contract/config-v1.js';
import { DISCOVERY_PROTO, DISCOVERY_SERVICE } from '../common/contract/discovery-v1.js';
import { IDENTITY_SERVICE } from '../common/contract/identity-v1.js';
import { TesseraError } from '../common/errors.js';

/**
 * Finds the directory holding `<folder>/<file>` by walking up from this module (works under dist/ too). `folder`
 * is `proto` for the product's contract; the bench keeps its own workload's proto in `bench/proto`.
 */
export function protoRoot(file: string, from: string = dirname(fileURLToPath(import.meta.url)), folder = 'proto'): string {
  let dir = from;
  for (let i = 0; i < 8; i++) {
    const candidate = join(dir, folder);
    if (existsSync(join(candidate, file))) return candidate;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new TesseraError('TESSERA_ERR_PROTO_NOT_FOUND', `${folder}/${file} not found above ${from}`);
}

export const PROTO_LOADER_OPTIONS: protoLoader.Options = Object.freeze({
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  bytes: Buffer,
});

/** The descriptors of one contract file (e.g. "spiffe/workload/workload.proto") and of what it imports. */
export function loadProtoDefinition(file: string, folder = 'proto'): protoLoader.PackageDefinition {
  return protoLoader.loadSync(file, { ...PROTO_LOADER_OPTIONS, includeDirs: [protoRoot(file, undefined, folder)] });
}

/** Loads one contract file as a grpc-js package object. */
export function loadProtoFile(file: string): grpc.GrpcObject {
  return grpc.loadPackageDefinition(loadProtoDefinition(file));
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

export interface TesseraServices {
  readonly identity: grpc.ServiceClientConstructor;
  readonly config: grpc.ServiceClientConstructor;
  readonly discovery: grpc.ServiceClientConstructor;
}

/** The Identity, Config and Discovery service constructors (their `.service` is the server-side definition). */
export function loadTesseraServices(): TesseraServices {
  // config.proto imports identity.proto, so one load holds both services.
  const pkg = loadProtoFile(CONFIG_PROTO);
  return { identity: serviceAt(pkg, IDENTITY_SERVICE), config: serviceAt(pkg, CONFIG_SERVICE), discovery: serviceAt(loadProtoFile(DISCOVERY_PROTO), DISCOVERY_SERVICE) };
}
