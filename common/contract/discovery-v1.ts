// The message types, service name and method paths of proto/tessera/discovery/v1/discovery.proto, as
// @grpc/proto-loader hands them over (keepCase, int64 as string): the one TypeScript copy.
import type { FieldsOf, Int64 } from './field-spec.js';

export const DISCOVERY_PROTO = 'tessera/discovery/v1/discovery.proto';
export const DISCOVERY_SERVICE = 'tessera.discovery.v1.Discovery';
export const DISCOVERY_WATCH_PATH = `/${DISCOVERY_SERVICE}/Watch`;
export const DISCOVERY_REGISTER_PATH = `/${DISCOVERY_SERVICE}/Register`;

/**
 * Most services a proxy's view holds (one bound both sides share): a proxy keeps at most this many (its own
 * listeners' first), and the control plane admits a self-registration of a new name only while its registry holds
 * fewer (discovery.maxServices, at most this), so one tenant cannot push every `all` watcher over.
 */
export const MAX_VIEW_SERVICES = 5_000;

export interface DiscoveryWatchRequestMsg {
  services: string[];
  all: boolean;
}
export const DISCOVERY_WATCH_REQUEST_FIELDS = { services: 'repeated string', all: 'bool' } as const satisfies FieldsOf<DiscoveryWatchRequestMsg>;

export interface EndpointMsg {
  address: string;
  spiffe_id: string;
  protocol: string;
  ready: boolean;
  zone: string;
  /** uint32 on the wire. */
  weight: number;
  source: string;
}
export const ENDPOINT_FIELDS = {
  address: 'string',
  spiffe_id: 'string',
  protocol: 'string',
  ready: 'bool',
  zone: 'string',
  weight: 'uint32',
  source: 'string',
} as const satisfies FieldsOf<EndpointMsg>;

export interface ServiceEndpointsMsg {
  service: string;
  endpoints: EndpointMsg[];
}
export const SERVICE_ENDPOINTS_FIELDS = { service: 'string', endpoints: 'repeated message tessera.discovery.v1.Endpoint' } as const satisfies FieldsOf<ServiceEndpointsMsg>;

export interface DiscoveryUpdateMsg {
  version: string;
  full: boolean;
  services: ServiceEndpointsMsg[];
  generated_at_unix_ms: Int64;
}
export const DISCOVERY_UPDATE_FIELDS = {
  version: 'string',
  full: 'bool',
  services: 'repeated message tessera.discovery.v1.ServiceEndpoints',
  generated_at_unix_ms: 'int64',
} as const satisfies FieldsOf<DiscoveryUpdateMsg>;

export interface RegistrationMsg {
  service: string;
  endpoint: EndpointMsg | null;
}
export const REGISTRATION_FIELDS = { service: 'string', endpoint: 'message tessera.discovery.v1.Endpoint' } as const satisfies FieldsOf<RegistrationMsg>;

export interface RegisterRequestMsg {
  registrations: RegistrationMsg[];
}
export const REGISTER_REQUEST_FIELDS = { registrations: 'repeated message tessera.discovery.v1.Registration' } as const satisfies FieldsOf<RegisterRequestMsg>;

export interface RegistrationRefusalMsg {
  service: string;
  address: string;
  code: string;
}
export const REGISTRATION_REFUSAL_FIELDS = { service: 'string', address: 'string', code: 'string' } as const satisfies FieldsOf<RegistrationRefusalMsg>;

export interface RegisterResponseMsg {
  accepted: RegistrationMsg[];
  refused: RegistrationRefusalMsg[];
}
export const REGISTER_RESPONSE_FIELDS = {
  accepted: 'repeated message tessera.discovery.v1.Registration',
  refused: 'repeated message tessera.discovery.v1.RegistrationRefusal',
} as const satisfies FieldsOf<RegisterResponseMsg>;
