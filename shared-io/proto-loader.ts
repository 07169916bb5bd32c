// The one loader of the gRPC contracts in <repo>/proto (proxy, control plane, bench and tests): finds proto/ from
// the source tree or from dist/, reads the files with protobufjs and builds grpc-js service definitions whose codecs
// hand messages over in the shapes common/contract/ declares: field names as written, bytes as Buffers, 64-bit
// integers and enums as strings, defaults filled in, a oneof's member named. Not @grpc/proto-loader: for the same
// codecs it also builds every file's descriptor tree (descriptor.proto's own types and their generated code), about
// 1 MB in every sidecar and control plane for reflection nothing here serves.
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { CONFIG_PROTO, CONFIG_SERVICE } from '../common/contract/config-v1.js';
import { DISCOVERY_PROTO, DISCOVERY_SERVICE } from '../common/contract/discovery-v1.js';
import { IDENTITY_SERVICE } from '../common/contract/identity-v1.js';
import { TesseraError } from '../common/errors.js';
import { wireChecker } from './proto-wire-check.js';

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

/** How decoded messages are handed over (the shapes of common/contract/); also what tests give @grpc/proto-loader. */
export const CODEC_OPTIONS = Object.freeze({ longs: String, enums: String, defaults: true, oneofs: true, bytes: Buffer });

/** What grpc.loadPackageDefinition takes: service definitions by their full name. */
export type ProtoDefinition = Parameters<typeof grpc.loadPackageDefinition>[0];

/** The service definitions of one contract file (e.g. "spiffe/workload/workload.proto") and of what it imports. */
export function loadProtoDefinition(file: string, folder = 'proto'): ProtoDefinition {
  const dir = protoRoot(file, undefined, folder);
  const root = new protobuf.Root();
  // Imports resolve under the same proto/ (google/protobuf/* come with protobufjs).
  root.resolvePath = (_origin, target) => (isAbsolute(target) ? target : join(dir, target));
  root.loadSync(file, { keepCase: true });
  root.resolveAll();
  const def: ProtoDefinition = {};
  for (const service of servicesIn(root)) {
    const name = service.fullName.slice(1);
    const methods: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
    for (const m of service.methodsArray) {
      const [req, res] = [m.resolvedRequestType!, m.resolvedResponseType!];
      methods[m.name] = { path: `/${name}/${m.name}`, requestStream: m.requestStream === true, responseStream: m.responseStream === true, requestSerialize: encoder(req), requestDeserialize: decoder(req), responseSerialize: encoder(res), responseDeserialize: decoder(res) };
    }
    def[name] = methods;
  }
  return def;
}

function* servicesIn(ns: protobuf.NamespaceBase): Generator<protobuf.Service> {
  for (const child of ns.nestedArray) {
    if (child instanceof protobuf.Service) yield child;
    if (child instanceof protobuf.Namespace) yield* servicesIn(child);
  }
}

function encoder(type: protobuf.Type): (msg: unknown) => Buffer {
  return (msg) => type.encode(type.fromObject(msg as Record<string, unknown>)).finish() as Buffer;
}

function decoder(type: protobuf.Type): (bytes: Buffer) => unknown {
  // protobufjs alone accepts truncated fields and field number 0 (proto-wire-check.ts): the walk comes first.
  const check = wireChecker(type);
  return (bytes) => {
    check(bytes);
    return type.toObject(type.decode(bytes), CODEC_OPTIONS);
  };
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
