// The message types, service name and method path of proto/tessera/identity/v1/identity.proto, as
// @grpc/proto-loader hands them over (keepCase, bytes as Buffer, int64 as string): the one TypeScript copy.
import type { FieldsOf, Int64 } from './field-spec.js';

export const IDENTITY_PROTO = 'tessera/identity/v1/identity.proto';
export const IDENTITY_SERVICE = 'tessera.identity.v1.Identity';
export const SIGN_SVID_PATH = `/${IDENTITY_SERVICE}/SignSvid`;

export interface SignSvidRequestMsg {
  csr?: Buffer;
  join_token?: string;
  k8s_sa_token?: string;
  /** Which member of the `evidence` oneof is set (proto-loader `oneofs: true`); absent = renewal over mTLS. */
  evidence?: 'join_token' | 'k8s_sa_token';
  ttl_seconds?: Int64;
}
export const SIGN_SVID_REQUEST_FIELDS = {
  csr: 'bytes',
  join_token: 'string',
  k8s_sa_token: 'string',
  evidence: 'oneof',
  ttl_seconds: 'int64',
} as const satisfies FieldsOf<SignSvidRequestMsg>;

export interface TrustBundleMsg {
  trust_domain: string;
  x509_authorities: Buffer[];
}
export const TRUST_BUNDLE_FIELDS = { trust_domain: 'string', x509_authorities: 'repeated bytes' } as const satisfies FieldsOf<TrustBundleMsg>;

export interface SignSvidResponseMsg {
  svid_chain: Buffer[];
  bundles: TrustBundleMsg[];
  spiffe_id: string;
  not_after_unix_ms: Int64;
  serial: string;
}
export const SIGN_SVID_RESPONSE_FIELDS = {
  svid_chain: 'repeated bytes',
  bundles: 'repeated message tessera.identity.v1.TrustBundle',
  spiffe_id: 'string',
  not_after_unix_ms: 'int64',
  serial: 'string',
} as const satisfies FieldsOf<SignSvidResponseMsg>;
