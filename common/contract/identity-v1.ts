// The message types, service name and method path of proto/tessera/identity/v1/identity.proto, as
// @grpc/proto-loader hands them over (keepCase, bytes as Buffer, int64 as string): the one TypeScript copy.
import type { FieldsOf, Int64 } from './field-spec.js';

export const IDENTITY_PROTO = 'tessera/identity/v1/identity.proto';
export const IDENTITY_SERVICE = 'tessera.identity.v1.Identity';
export const SIGN_SVID_PATH = `/${IDENTITY_SERVICE}/SignSvid`;
export const MINT_JWT_SVID_PATH = `/${IDENTITY_SERVICE}/MintJwtSvid`;
export const TPM_CHALLENGE_PATH = `/${IDENTITY_SERVICE}/TpmChallenge`;

/** TPM attestation evidence (docs/tpm-attestation.md): a quote bound to a TpmChallenge nonce and the CSR's key. */
export interface TpmEvidenceMsg {
  /** DER, the AK certificate first, then intermediates. */
  ak_cert_chain: Buffer[];
  /** TPMS_ATTEST as the TPM marshalled it. */
  quote: Buffer;
  /** TPMT_SIGNATURE over `quote`. */
  signature: Buffer;
  nonce: Buffer;
}
export const TPM_EVIDENCE_FIELDS = {
  ak_cert_chain: 'repeated bytes',
  quote: 'bytes',
  signature: 'bytes',
  nonce: 'bytes',
} as const satisfies FieldsOf<TpmEvidenceMsg>;

export interface TpmChallengeResponseMsg {
  nonce: Buffer;
  expires_at_unix_ms: Int64;
  /** "sha1" | "sha256" | "sha384" | "sha512". */
  pcr_bank: string;
  pcrs: number[];
}
export const TPM_CHALLENGE_RESPONSE_FIELDS = {
  nonce: 'bytes',
  expires_at_unix_ms: 'int64',
  pcr_bank: 'string',
  pcrs: 'repeated uint32',
} as const satisfies FieldsOf<TpmChallengeResponseMsg>;

export interface SignSvidRequestMsg {
  csr?: Buffer;
  join_token?: string;
  k8s_sa_token?: string;
  tpm?: TpmEvidenceMsg | null;
  /** Which member of the `evidence` oneof is set (proto-loader `oneofs: true`); absent = renewal over mTLS. */
  evidence?: 'join_token' | 'k8s_sa_token' | 'tpm';
  ttl_seconds?: Int64;
}
export const SIGN_SVID_REQUEST_FIELDS = {
  csr: 'bytes',
  join_token: 'string',
  k8s_sa_token: 'string',
  tpm: 'message tessera.identity.v1.TpmEvidence',
  evidence: 'oneof',
  ttl_seconds: 'int64',
} as const satisfies FieldsOf<SignSvidRequestMsg>;

export interface JwtAuthorityMsg {
  key_id: string;
  /** DER SubjectPublicKeyInfo. */
  public_key: Buffer;
}
export const JWT_AUTHORITY_FIELDS = { key_id: 'string', public_key: 'bytes' } as const satisfies FieldsOf<JwtAuthorityMsg>;

export interface TrustBundleMsg {
  trust_domain: string;
  x509_authorities: Buffer[];
  /** Absent (or empty) from a control plane that predates JWT-SVIDs. */
  jwt_authorities?: JwtAuthorityMsg[];
}
export const TRUST_BUNDLE_FIELDS = {
  trust_domain: 'string',
  x509_authorities: 'repeated bytes',
  jwt_authorities: 'repeated message tessera.identity.v1.JwtAuthority',
} as const satisfies FieldsOf<TrustBundleMsg>;

export interface MintJwtSvidRequestMsg {
  audience: string[];
  ttl_seconds?: Int64;
}
export const MINT_JWT_SVID_REQUEST_FIELDS = { audience: 'repeated string', ttl_seconds: 'int64' } as const satisfies FieldsOf<MintJwtSvidRequestMsg>;

export interface MintJwtSvidResponseMsg {
  token: string;
  spiffe_id: string;
  issued_at_unix_ms: Int64;
  expires_at_unix_ms: Int64;
}
export const MINT_JWT_SVID_RESPONSE_FIELDS = {
  token: 'string',
  spiffe_id: 'string',
  issued_at_unix_ms: 'int64',
  expires_at_unix_ms: 'int64',
} as const satisfies FieldsOf<MintJwtSvidResponseMsg>;

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
