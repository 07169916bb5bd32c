// The product's contract loader (protobufjs, no descriptor trees) against @grpc/proto-loader, the reader grpc clients
// in the wild use: for every method of every contract file, a message filled in every field (oneof members, int64,
// bytes, enums, maps, nested messages, google.protobuf.Struct) encodes to bytes the other side decodes to the same
// object, both ways, and an empty message decodes to the same defaults. Also: a service built from the definition
// serves a real grpc-js client.
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { afterAll, describe, expect, test } from 'vitest';
import { CONTRACT_FILES } from '../../../common/contract/contract-files.js';
import { CODEC_OPTIONS, loadProtoDefinition, loadProtoFile, serviceAt } from '../../../shared-io/proto-loader.js';
import { REPO_ROOT } from '../../helpers/run.js';

type Defs = protoLoader.PackageDefinition;

const PROTO_DIR = join(REPO_ROOT, 'proto');
const reference = (file: string): Defs => protoLoader.loadSync(file, { ...CODEC_OPTIONS, keepCase: true, includeDirs: [PROTO_DIR] });

/** The file's types through protobufjs's reflection, only to know what to fill in. */
function reflection(file: string): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_o, target) => join(PROTO_DIR, target);
  root.loadSync(file, { keepCase: true });
  root.resolveAll();
  return root;
}

/** A value for every field (the last member of each oneof), nested messages two levels deep. */
function sample(type: protobuf.Type, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of type.fieldsArray) {
    if (f.partOf && !f.partOf.name.startsWith('_') && f.partOf.fieldsArray.at(-1) !== f) continue;
    const v = fieldValue(f, depth);
    if (v === undefined) continue;
    if (f.map) out[f.name] = { k1: v };
    else out[f.name] = f.repeated ? [v, v] : v;
  }
  return out;
}

function fieldValue(f: protobuf.Field | protobuf.MapField, depth: number): unknown {
  if (f.resolvedType instanceof protobuf.Enum) return Object.keys(f.resolvedType.values).at(-1);
  if (f.resolvedType instanceof protobuf.Type) {
    if (f.resolvedType.fullName === '.google.protobuf.Struct') return { fields: { a: { stringValue: 'x' }, b: { numberValue: 2 } } };
    return depth > 0 ? sample(f.resolvedType, depth - 1) : undefined;
  }
  switch (f.type) {
    case 'string':
      return `v-${f.name}`;
    case 'bytes':
      return Buffer.from([1, 2, 0xff]);
    case 'bool':
      return true;
    case 'int64':
    case 'uint64':
    case 'sint64':
    case 'fixed64':
    case 'sfixed64':
      return '9007199254740993'; // above 2^53: must stay exact
    case 'double':
    case 'float':
      return 1.5;
    default:
      return 7;
  }
}

const servers: grpc.Server[] = [];
afterAll(() => {
  for (const s of servers) s.forceShutdown();
});

describe.each(CONTRACT_FILES.map((c) => c.file))('%s: the same messages as @grpc/proto-loader', (file) => {
  const ours = loadProtoDefinition(file);
  const theirs = reference(file);
  const types = reflection(file);
  const methods = Object.entries(ours).flatMap(([service, def]) => Object.entries(def as grpc.ServiceDefinition).map(([name, m]) => ({ service, name, m })));

  test('every service and method, with the same paths and streaming', () => {
    expect(methods.length).toBeGreaterThan(0);
    for (const { service, name, m } of methods) {
      const ref = (theirs[service] as protoLoader.ServiceDefinition)[name]!;
      expect({ path: m.path, requestStream: m.requestStream, responseStream: m.responseStream }).toEqual({ path: ref.path, requestStream: ref.requestStream, responseStream: ref.responseStream });
    }
  });

  test('filled and empty messages cross both ways', () => {
    for (const { service, name, m } of methods) {
      const ref = (theirs[service] as protoLoader.ServiceDefinition)[name]!;
      const method = types.lookupService(service).methods[name]!;
      for (const [side, type, ourSer, ourDes, refSer, refDes] of [
        ['request', method.resolvedRequestType!, m.requestSerialize, m.requestDeserialize, ref.requestSerialize, ref.requestDeserialize],
        ['response', method.resolvedResponseType!, m.responseSerialize, m.responseDeserialize, ref.responseSerialize, ref.responseDeserialize],
      ] as const) {
        const msg = sample(type, 2);
        expect(Object.keys(msg).length, `${service}.${name} ${side} sample`).toBe(type.fieldsArray.length - type.oneofsArray.reduce((n, o) => n + (o.name.startsWith('_') ? 0 : o.fieldsArray.length - 1), 0));
        const label = `${service}.${name} ${side}`;
        expect(ourDes(refSer(msg)), label).toEqual(refDes(refSer(msg)));
        expect(refDes(ourSer(msg)), label).toEqual(refDes(refSer(msg)));
        expect(ourDes(Buffer.alloc(0)), `${label} (empty)`).toEqual(refDes(Buffer.alloc(0)));
      }
    }
  });
});

test('garbage bytes are refused by the decoder, not handed on', () => {
  const [def] = Object.values(loadProtoDefinition(CONTRACT_FILES[0]!.file)) as grpc.ServiceDefinition[];
  const m = Object.values(def!)[0]!;
  expect(() => m.requestDeserialize(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]))).toThrow();
});

test('a service built from the definition serves a real grpc-js client built from @grpc/proto-loader', async () => {
  const file = CONTRACT_FILES.find((c) => c.file.includes('identity'))!.file;
  const service = serviceAt(loadProtoFile(file), 'tessera.identity.v1.Identity').service;
  const server = new grpc.Server();
  servers.push(server);
  let seen: unknown;
  server.addService(service, {
    MintJwtSvid: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      seen = call.request;
      cb(null, { token: 'the-token' });
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const Identity = (grpc.loadPackageDefinition(reference(file)) as unknown as { tessera: { identity: { v1: { Identity: grpc.ServiceClientConstructor } } } }).tessera.identity.v1.Identity;
  const client = new Identity(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const answer = await new Promise<unknown>((resolve, reject) => client.MintJwtSvid!({ audience: ['a', 'b'] }, (e: Error | null, r: unknown) => (e ? reject(e) : resolve(r))));
  client.close();
  expect(answer).toMatchObject({ token: 'the-token' });
  expect(seen).toMatchObject({ audience: ['a', 'b'] });
});
