// The message types, service name and method paths of proto/tessera/config/v1/config.proto, as
// @grpc/proto-loader hands them over (keepCase, int64 as string): the one TypeScript copy.
import type { EmptyMsg, FieldsOf, Int64 } from './field-spec.js';
import type { TrustBundleMsg } from './identity-v1.js';

export const CONFIG_PROTO = 'tessera/config/v1/config.proto';
export const CONFIG_SERVICE = 'tessera.config.v1.Config';
export const WATCH_PATH = `/${CONFIG_SERVICE}/Watch`;
export const REPORT_PATH = `/${CONFIG_SERVICE}/Report`;

export type WatchRequestMsg = EmptyMsg;
export const WATCH_REQUEST_FIELDS = {} as const satisfies FieldsOf<WatchRequestMsg>;

export interface PolicyDocumentMsg {
  name: string;
  json: string;
}
export const POLICY_DOCUMENT_FIELDS = { name: 'string', json: 'string' } as const satisfies FieldsOf<PolicyDocumentMsg>;

export interface BreakGlassGrantMsg {
  id: string;
  to: string;
  from: string[];
  expires_at_unix_ms: Int64;
  reason: string;
  created_by: string;
  created_at_unix_ms: Int64;
}
export const BREAK_GLASS_GRANT_FIELDS = {
  id: 'string',
  to: 'string',
  from: 'repeated string',
  expires_at_unix_ms: 'int64',
  reason: 'string',
  created_by: 'string',
  created_at_unix_ms: 'int64',
} as const satisfies FieldsOf<BreakGlassGrantMsg>;

export interface DenyListMsg {
  spiffe_ids: string[];
  serials: string[];
}
export const DENY_LIST_FIELDS = { spiffe_ids: 'repeated string', serials: 'repeated string' } as const satisfies FieldsOf<DenyListMsg>;

export interface ConfigSnapshotMsg {
  version: string;
  bundles: TrustBundleMsg[];
  policies: PolicyDocumentMsg[];
  break_glass: BreakGlassGrantMsg[];
  generated_at_unix_ms: Int64;
  /** Absent (null) from a control plane that predates revocation. */
  deny_list?: DenyListMsg | null;
}
export const CONFIG_SNAPSHOT_FIELDS = {
  version: 'string',
  bundles: 'repeated message tessera.identity.v1.TrustBundle',
  policies: 'repeated message tessera.config.v1.PolicyDocument',
  break_glass: 'repeated message tessera.config.v1.BreakGlassGrant',
  generated_at_unix_ms: 'int64',
  deny_list: 'message tessera.config.v1.DenyList',
} as const satisfies FieldsOf<ConfigSnapshotMsg>;

/** What one ProxyReport may hold (the control plane refuses more with TESSERA_ERR_REPORT_INVALID). */
export const REPORT_LIMITS = Object.freeze({
  served: 256,
  denials: 256,
  instanceChars: 256,
  policyChars: 253,
  /** A SPIFFE ID's own limit. */
  callerBytes: 2048,
});

/** DenialCount.policy when no single policy decided, and for rows a proxy folded beyond its bound. */
export const NO_POLICY = '';
export const FOLDED_POLICIES = '*';

export type DenialOutcome = 'deny' | 'audit';

export interface ServedSvidMsg {
  listener: string;
  serial: string;
  not_after_unix_ms: Int64;
}
export const SERVED_SVID_FIELDS = { listener: 'string', serial: 'string', not_after_unix_ms: 'int64' } as const satisfies FieldsOf<ServedSvidMsg>;

export interface DenialCountMsg {
  policy: string;
  /** DenialOutcome on the wire; anything else is refused. */
  outcome: string;
  count: Int64;
  last_at_unix_ms: Int64;
  last_caller: string;
}
export const DENIAL_COUNT_FIELDS = {
  policy: 'string',
  outcome: 'string',
  count: 'int64',
  last_at_unix_ms: 'int64',
  last_caller: 'string',
} as const satisfies FieldsOf<DenialCountMsg>;

export interface ProxyReportMsg {
  instance: string;
  checked_at_unix_ms: Int64;
  served: ServedSvidMsg[];
  denials: DenialCountMsg[];
}
export const PROXY_REPORT_FIELDS = {
  instance: 'string',
  checked_at_unix_ms: 'int64',
  served: 'repeated message tessera.config.v1.ServedSvid',
  denials: 'repeated message tessera.config.v1.DenialCount',
} as const satisfies FieldsOf<ProxyReportMsg>;

export interface ReportAckMsg {
  received_at_unix_ms: Int64;
  replica: string;
}
export const REPORT_ACK_FIELDS = { received_at_unix_ms: 'int64', replica: 'string' } as const satisfies FieldsOf<ReportAckMsg>;
