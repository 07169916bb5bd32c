// Loads the Tessera gRPC contracts (proto/tessera/...) at run time, from the source tree or next to dist/, with
// options that keep bytes as Buffers and 64-bit integers as strings.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { TesseraError } from '../../../common/errors.js';

export const IDENTITY_PROTO = 'tessera/identity/v1/identity.proto';
export const CONFIG_PROTO = 'tessera/config/v1/config.proto';

const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  bytes: Buffer,
};

function protoRoot(file: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const candidate = join(dir, 'proto');
    if (existsSync(join(candidate, file))) return candidate;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new TesseraError('TESSERA_ERR_PROTO_NOT_FOUND', `proto/${file} not found above ${fileURLToPath(import.meta.url)}`);
}

export interface TesseraServices {
  readonly identity: grpc.ServiceClientConstructor;
  readonly config: grpc.ServiceClientConstructor;
}

/** The Identity and Config service constructors (their `.service` is the server-side definition). */
export function loadTesseraServices(): TesseraServices {
  const root = protoRoot(IDENTITY_PROTO);
  const def = protoLoader.loadSync([IDENTITY_PROTO, CONFIG_PROTO], { ...LOADER_OPTIONS, includeDirs: [root] });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    tessera: { identity: { v1: { Identity: grpc.ServiceClientConstructor } }; config: { v1: { Config: grpc.ServiceClientConstructor } } };
  };
  return { identity: pkg.tessera.identity.v1.Identity, config: pkg.tessera.config.v1.Config };
}

/** Wire shapes as proto-loader hands them over (keepCase, bytes as Buffer, int64 as string). */
export interface SignSvidRequestMsg {
  csr?: Buffer;
  join_token?: string;
  k8s_sa_token?: string;
  evidence?: 'join_token' | 'k8s_sa_token';
  ttl_seconds?: string | number;
}

export interface TrustBundleMsg {
  trust_domain: string;
  x509_authorities: Buffer[];
}

export interface SignSvidResponseMsg {
  svid_chain: Buffer[];
  bundles: TrustBundleMsg[];
  spiffe_id: string;
  not_after_unix_ms: string | number;
  serial: string;
}

export interface BreakGlassGrantMsg {
  id: string;
  to: string;
  from: string[];
  expires_at_unix_ms: string | number;
  reason: string;
  created_by: string;
  created_at_unix_ms: string | number;
}

export interface DenyListMsg {
  spiffe_ids: string[];
  serials: string[];
}

export interface ConfigSnapshotMsg {
  version: string;
  bundles: TrustBundleMsg[];
  policies: { name: string; json: string }[];
  break_glass: BreakGlassGrantMsg[];
  generated_at_unix_ms: string | number;
  deny_list: DenyListMsg;
}
