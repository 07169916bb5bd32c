// The message types, service name and method paths of proto/spiffe/workload/workload.proto (the SPIFFE Workload
// API), as @grpc/proto-loader hands them over (keepCase, bytes as Buffer): the one TypeScript copy.
import type { EmptyMsg, FieldsOf } from './field-spec.js';

export const WORKLOAD_API_PROTO = 'spiffe/workload/workload.proto';
/** The file declares no package, so the service name (and each method path) is bare. */
export const WORKLOAD_API_SERVICE = 'SpiffeWorkloadAPI';
export const WORKLOAD_API_PATHS = {
  FetchX509SVID: `/${WORKLOAD_API_SERVICE}/FetchX509SVID`,
  FetchX509Bundles: `/${WORKLOAD_API_SERVICE}/FetchX509Bundles`,
  FetchJWTSVID: `/${WORKLOAD_API_SERVICE}/FetchJWTSVID`,
  FetchJWTBundles: `/${WORKLOAD_API_SERVICE}/FetchJWTBundles`,
  ValidateJWTSVID: `/${WORKLOAD_API_SERVICE}/ValidateJWTSVID`,
} as const;

export type X509SvidRequestMsg = EmptyMsg;
export type X509BundlesRequestMsg = EmptyMsg;
export type JwtBundlesRequestMsg = EmptyMsg;

export interface X509SvidMsg {
  spiffe_id: string;
  /** DER certificates, leaf first, concatenated. */
  x509_svid: Buffer;
  /** DER PKCS#8 private key, unencrypted. */
  x509_svid_key: Buffer;
  /** DER CA certificates of the SVID's own trust domain, concatenated. */
  bundle: Buffer;
  hint: string;
}
export const X509_SVID_FIELDS = {
  spiffe_id: 'string',
  x509_svid: 'bytes',
  x509_svid_key: 'bytes',
  bundle: 'bytes',
  hint: 'string',
} as const satisfies FieldsOf<X509SvidMsg>;

export interface X509SvidResponseMsg {
  svids: X509SvidMsg[];
  crl: Buffer[];
  /** Bundles of foreign trust domains keyed by their SPIFFE ID ("spiffe://td"), DER-concatenated. */
  federated_bundles: Record<string, Buffer>;
}
export const X509_SVID_RESPONSE_FIELDS = {
  svids: 'repeated message X509SVID',
  crl: 'repeated bytes',
  federated_bundles: 'map<string, bytes>',
} as const satisfies FieldsOf<X509SvidResponseMsg>;

export interface X509BundlesResponseMsg {
  crl: Buffer[];
  bundles: Record<string, Buffer>;
}
export const X509_BUNDLES_RESPONSE_FIELDS = { crl: 'repeated bytes', bundles: 'map<string, bytes>' } as const satisfies FieldsOf<X509BundlesResponseMsg>;

export interface JwtSvidRequestMsg {
  audience: string[];
  spiffe_id: string;
}
export const JWT_SVID_REQUEST_FIELDS = { audience: 'repeated string', spiffe_id: 'string' } as const satisfies FieldsOf<JwtSvidRequestMsg>;

export interface JwtSvidMsg {
  spiffe_id: string;
  svid: string;
  hint: string;
}
export const JWT_SVID_FIELDS = { spiffe_id: 'string', svid: 'string', hint: 'string' } as const satisfies FieldsOf<JwtSvidMsg>;

export interface JwtSvidResponseMsg {
  svids: JwtSvidMsg[];
}
export const JWT_SVID_RESPONSE_FIELDS = { svids: 'repeated message JWTSVID' } as const satisfies FieldsOf<JwtSvidResponseMsg>;

export interface JwtBundlesResponseMsg {
  bundles: Record<string, Buffer>;
}
export const JWT_BUNDLES_RESPONSE_FIELDS = { bundles: 'map<string, bytes>' } as const satisfies FieldsOf<JwtBundlesResponseMsg>;

export interface ValidateJwtSvidRequestMsg {
  audience: string;
  svid: string;
}
export const VALIDATE_JWT_SVID_REQUEST_FIELDS = { audience: 'string', svid: 'string' } as const satisfies FieldsOf<ValidateJwtSvidRequestMsg>;

/** google.protobuf.Struct as proto-loader decodes it (no `json` conversion): kind-tagged values. */
export interface ProtoStructMsg {
  fields: Record<string, unknown>;
}

export interface ValidateJwtSvidResponseMsg {
  spiffe_id: string;
  claims: ProtoStructMsg | null;
}
export const VALIDATE_JWT_SVID_RESPONSE_FIELDS = {
  spiffe_id: 'string',
  claims: 'message google.protobuf.Struct',
} as const satisfies FieldsOf<ValidateJwtSvidResponseMsg>;

