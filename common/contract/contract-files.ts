// Every file of proto/ with the FIELDS table of each of its messages: what the drift test
// (test/unit/common/contract/proto-drift.test.ts) compares with the descriptors @grpc/proto-loader reads.
import * as config from './config-v1.js';
import * as discovery from './discovery-v1.js';
import type { ContractFile, EmptyMsg, FieldsOf } from './field-spec.js';
import * as identity from './identity-v1.js';
import * as workload from './spiffe-workload.js';

const NO_FIELDS = {} as const satisfies FieldsOf<EmptyMsg>;

export const CONTRACT_FILES: readonly ContractFile[] = [
  {
    file: identity.IDENTITY_PROTO,
    package: 'tessera.identity.v1',
    messages: {
      SignSvidRequest: identity.SIGN_SVID_REQUEST_FIELDS,
      SignSvidResponse: identity.SIGN_SVID_RESPONSE_FIELDS,
      TrustBundle: identity.TRUST_BUNDLE_FIELDS,
      JwtAuthority: identity.JWT_AUTHORITY_FIELDS,
      MintJwtSvidRequest: identity.MINT_JWT_SVID_REQUEST_FIELDS,
      MintJwtSvidResponse: identity.MINT_JWT_SVID_RESPONSE_FIELDS,
      TpmChallengeRequest: NO_FIELDS,
      TpmChallengeResponse: identity.TPM_CHALLENGE_RESPONSE_FIELDS,
      TpmEvidence: identity.TPM_EVIDENCE_FIELDS,
    },
  },
  {
    file: config.CONFIG_PROTO,
    package: 'tessera.config.v1',
    messages: {
      WatchRequest: config.WATCH_REQUEST_FIELDS,
      ConfigSnapshot: config.CONFIG_SNAPSHOT_FIELDS,
      DenyList: config.DENY_LIST_FIELDS,
      PolicyDocument: config.POLICY_DOCUMENT_FIELDS,
      BreakGlassGrant: config.BREAK_GLASS_GRANT_FIELDS,
      ProxyReport: config.PROXY_REPORT_FIELDS,
      ServedSvid: config.SERVED_SVID_FIELDS,
      DenialCount: config.DENIAL_COUNT_FIELDS,
      ReportAck: config.REPORT_ACK_FIELDS,
    },
  },
  {
    file: discovery.DISCOVERY_PROTO,
    package: 'tessera.discovery.v1',
    messages: {
      WatchRequest: discovery.DISCOVERY_WATCH_REQUEST_FIELDS,
      Endpoint: discovery.ENDPOINT_FIELDS,
      ServiceEndpoints: discovery.SERVICE_ENDPOINTS_FIELDS,
      DiscoveryUpdate: discovery.DISCOVERY_UPDATE_FIELDS,
      Registration: discovery.REGISTRATION_FIELDS,
      RegisterRequest: discovery.REGISTER_REQUEST_FIELDS,
      RegistrationRefusal: discovery.REGISTRATION_REFUSAL_FIELDS,
      RegisterResponse: discovery.REGISTER_RESPONSE_FIELDS,
    },
  },
  {
    // google.protobuf.Struct (imported by this file) is the well-known types' own contract, not declared here.
    file: workload.WORKLOAD_API_PROTO,
    package: '',
    messages: {
      X509SVIDRequest: NO_FIELDS,
      X509SVIDResponse: workload.X509_SVID_RESPONSE_FIELDS,
      X509SVID: workload.X509_SVID_FIELDS,
      X509BundlesRequest: NO_FIELDS,
      X509BundlesResponse: workload.X509_BUNDLES_RESPONSE_FIELDS,
      JWTSVIDRequest: workload.JWT_SVID_REQUEST_FIELDS,
      JWTSVIDResponse: workload.JWT_SVID_RESPONSE_FIELDS,
      JWTSVID: workload.JWT_SVID_FIELDS,
      JWTBundlesRequest: NO_FIELDS,
      JWTBundlesResponse: workload.JWT_BUNDLES_RESPONSE_FIELDS,
      ValidateJWTSVIDRequest: workload.VALIDATE_JWT_SVID_REQUEST_FIELDS,
      ValidateJWTSVIDResponse: workload.VALIDATE_JWT_SVID_RESPONSE_FIELDS,
    },
  },
];
