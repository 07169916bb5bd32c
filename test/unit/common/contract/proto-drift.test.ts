// Drift test of the one TypeScript copy of the gRPC contract (common/contract/): every message of every file in
// proto/ must have a FIELDS table (tied to its interface by the compiler) naming the same fields with the same
// kinds (scalar type, repeated, map, message type, oneof) as the descriptor @grpc/proto-loader reads (an independent
// reader: the product loads the files with protobufjs itself, shared-io/proto-loader.ts); the method paths and the
// error-metadata key must be the ones the files define.
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, describe, expect, test } from 'vitest';
import { CONFIG_PROTO, REPORT_PATH, WATCH_PATH } from '../../../../common/contract/config-v1.js';
import { CONTRACT_FILES } from '../../../../common/contract/contract-files.js';
import { ERROR_CODE_METADATA } from '../../../../common/contract/error-metadata.js';
import type { ContractFile } from '../../../../common/contract/field-spec.js';
import { IDENTITY_PROTO, MINT_JWT_SVID_PATH, SIGN_SVID_PATH, TPM_CHALLENGE_PATH } from '../../../../common/contract/identity-v1.js';
import { WORKLOAD_API_PATHS, WORKLOAD_API_PROTO, WORKLOAD_API_SERVICE } from '../../../../common/contract/spiffe-workload.js';
import type * as grpc from '@grpc/grpc-js';
import { CODEC_OPTIONS, loadProtoDefinition } from '../../../../shared-io/proto-loader.js';
import { REPO_ROOT } from '../../../helpers/run.js';

interface FieldDescriptor {
  readonly name: string;
  readonly label: string;
  readonly type: string;
  readonly typeName: string;
}
interface MessageDescriptor {
  readonly field: readonly FieldDescriptor[];
  readonly nestedType: readonly (MessageDescriptor & { readonly name: string; readonly options: { readonly mapEntry?: boolean } | null })[];
  readonly oneofDecl: readonly { readonly name: string }[];
}

/** The descriptors @grpc/proto-loader reads from `dir` (proto/ by default). */
const descriptors = (file: string, dir = join(REPO_ROOT, 'proto')) => protoLoader.loadSync(file, { ...CODEC_OPTIONS, keepCase: true, includeDirs: [dir] });

const scalar = (f: FieldDescriptor): string => f.type.replace(/^TYPE_/, '').toLowerCase();

/** The full name a (possibly relative) type reference resolves to, innermost scope first as protobuf does. */
function resolve(def: protoLoader.PackageDefinition, owner: string, typeName: string): string {
  const scope = owner.split('.');
  for (let i = scope.length; i >= 0; i--) {
    const candidate = [...scope.slice(0, i), typeName].join('.');
    if (candidate in def) return candidate;
  }
  return `${typeName} (unresolved)`;
}

/** A field's kind in the spelling of common/contract/field-spec.ts. */
function specOf(def: protoLoader.PackageDefinition, ownerName: string, owner: MessageDescriptor, f: FieldDescriptor): string {
  const entry = owner.nestedType.find((n) => n.name === f.typeName && n.options?.mapEntry);
  if (entry) return `map<${scalar(entry.field[0]!)}, ${scalar(entry.field[1]!)}>`;
  const base = f.type === 'TYPE_MESSAGE' ? `message ${resolve(def, ownerName, f.typeName)}` : scalar(f);
  return f.label === 'LABEL_REPEATED' ? `repeated ${base}` : base;
}

/** Message name → field name → kind, for every message the definition holds (well-known types left out). */
function loadedMessages(def: protoLoader.PackageDefinition): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const [name, entry] of Object.entries(def)) {
    if (!('format' in entry) || entry.format !== 'Protocol Buffer 3 DescriptorProto' || name.startsWith('google.protobuf.')) continue;
    const type = entry.type as MessageDescriptor;
    const fields: Record<string, string> = {};
    for (const f of type.field) fields[f.name] = specOf(def, name, type, f);
    for (const o of type.oneofDecl) fields[o.name] = 'oneof';
    out[name] = fields;
  }
  return out;
}

/** What differs between a file's descriptors and its TypeScript tables (empty = no drift). */
function drift(def: protoLoader.PackageDefinition, contract: ContractFile): string[] {
  const packageOf = (name: string) => name.slice(0, Math.max(0, name.lastIndexOf('.')));
  const loaded = Object.fromEntries(Object.entries(loadedMessages(def)).filter(([n]) => packageOf(n) === contract.package));
  const declared = Object.fromEntries(Object.entries(contract.messages).map(([n, f]) => [contract.package ? `${contract.package}.${n}` : n, f]));
  const out: string[] = [];
  for (const name of new Set([...Object.keys(loaded), ...Object.keys(declared)])) {
    const want = loaded[name];
    const have = declared[name];
    if (!want || !have) {
      out.push(`${name}: ${want ? 'not declared in common/contract' : 'not in the .proto'}`);
      continue;
    }
    for (const field of new Set([...Object.keys(want), ...Object.keys(have)])) {
      if (want[field] !== have[field]) out.push(`${name}.${field}: proto ${want[field] ?? '(none)'}, TypeScript ${have[field] ?? '(none)'}`);
    }
  }
  return out;
}

const protoFiles = (dir: string): string[] =>
  readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.proto'))
    .sort();

const tmp = mkdtempSync(join(tmpdir(), 'tessera-proto-drift-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('common/contract matches proto/', () => {
  test('every file in proto/ has its TypeScript declarations', () => {
    expect(CONTRACT_FILES.map((c) => c.file).sort()).toEqual(protoFiles(join(REPO_ROOT, 'proto')));
  });

  for (const contract of CONTRACT_FILES) {
    test(`every message of ${contract.file} is declared with the same fields and kinds`, () => {
      expect(drift(descriptors(contract.file), contract)).toEqual([]);
    });
  }

  test('the method paths are the ones the services define', () => {
    const paths = (def: ReturnType<typeof loadProtoDefinition>, service: string) =>
      Object.fromEntries(Object.entries(def[service] as grpc.ServiceDefinition).map(([m, d]) => [m, d.path]));
    expect(paths(loadProtoDefinition(IDENTITY_PROTO), 'tessera.identity.v1.Identity')).toEqual({ SignSvid: SIGN_SVID_PATH, MintJwtSvid: MINT_JWT_SVID_PATH, TpmChallenge: TPM_CHALLENGE_PATH });
    expect(paths(loadProtoDefinition(CONFIG_PROTO), 'tessera.config.v1.Config')).toEqual({ Watch: WATCH_PATH, Report: REPORT_PATH });
    expect(paths(loadProtoDefinition(WORKLOAD_API_PROTO), WORKLOAD_API_SERVICE)).toEqual(WORKLOAD_API_PATHS);
  });

  test('the error-metadata key is the one the contract documents', () => {
    for (const file of [IDENTITY_PROTO, CONFIG_PROTO]) expect(readFileSync(join(REPO_ROOT, 'proto', file), 'utf8')).toContain(ERROR_CODE_METADATA);
  });

  test('a field, a kind or a message added to a .proto without the TypeScript side is reported', () => {
    cpSync(join(REPO_ROOT, 'proto'), tmp, { recursive: true });
    const path = join(tmp, CONFIG_PROTO);
    const text = readFileSync(path, 'utf8')
      .replace('message DenyList {', 'message DenyList {\n  repeated bytes added_keys = 3;')
      .replace('string reason = 5;', 'repeated string reason = 5;')
      .concat('\nmessage Added { string x = 1; }\n');
    writeFileSync(path, text);
    const def = descriptors(CONFIG_PROTO, tmp);
    expect(drift(def, CONTRACT_FILES.find((c) => c.file === CONFIG_PROTO)!).sort()).toEqual([
      'tessera.config.v1.Added: not declared in common/contract',
      'tessera.config.v1.BreakGlassGrant.reason: proto repeated string, TypeScript string',
      'tessera.config.v1.DenyList.added_keys: proto repeated bytes, TypeScript (none)',
    ]);
  });
});
