// A generic SPIFFE Workload API client for tests: the public proto with grpc-js (nothing of Tessera's) on a unix socket.
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { REPO_ROOT } from './run.js';

export type Cb<T> = (err: grpc.ServiceError | null, res: T) => void;
export interface JwtSvidsMsg {
  svids: { spiffe_id: string; svid: string }[];
}
export interface ValidatedJwtMsg {
  spiffe_id: string;
  claims: { fields: Record<string, { stringValue?: string; listValue?: { values: { stringValue: string }[] } }> };
}
export interface WorkloadClient extends grpc.Client {
  FetchJWTSVID(req: object, md: grpc.Metadata, cb: Cb<JwtSvidsMsg>): void;
  ValidateJWTSVID(req: object, md: grpc.Metadata, cb: Cb<ValidatedJwtMsg>): void;
  FetchJWTBundles(req: object, md: grpc.Metadata): grpc.ClientReadableStream<{ bundles: Record<string, Buffer> }>;
}

/** The security header every Workload API call must carry. */
export const workloadMetadata = () => {
  const m = new grpc.Metadata();
  m.set('workload.spiffe.io', 'true');
  return m;
};

/** A unary call's outcome, error or response, as a promise that never rejects. */
export const unaryCall = <T>(f: (cb: Cb<T>) => void) => new Promise<{ err: grpc.ServiceError | null; res: T }>((resolve) => f((err, res) => resolve({ err, res })));

export interface WorkloadApi {
  readonly client: WorkloadClient;
  fetchJwt(req: object): Promise<{ err: grpc.ServiceError | null; res: JwtSvidsMsg }>;
  validate(audience: string, svid: string): Promise<{ err: grpc.ServiceError | null; res: ValidatedJwtMsg }>;
}

export function connectWorkloadApi(socketPath: string): WorkloadApi {
  const def = protoLoader.loadSync(join(REPO_ROOT, 'proto/spiffe/workload/workload.proto'), { keepCase: true, longs: String, defaults: true });
  const Wl = (grpc.loadPackageDefinition(def) as unknown as { SpiffeWorkloadAPI: grpc.ServiceClientConstructor }).SpiffeWorkloadAPI;
  const client = new Wl(`unix://${socketPath}`, grpc.credentials.createInsecure()) as unknown as WorkloadClient;
  return {
    client,
    fetchJwt: (req) => unaryCall<JwtSvidsMsg>((cb) => client.FetchJWTSVID(req, workloadMetadata(), cb)),
    validate: (audience, svid) => unaryCall<ValidatedJwtMsg>((cb) => client.ValidateJWTSVID({ audience, svid }, workloadMetadata(), cb)),
  };
}
