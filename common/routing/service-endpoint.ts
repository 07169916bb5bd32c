// A service's endpoint as the registry and the proxies know it (DESIGN.md section 11): one inbound listener of a
// proxy, where it is and which SPIFFE ID it must present. The wire message is common/contract/discovery-v1.ts.
import type { EndpointMsg } from '../contract/discovery-v1.js';
import { TesseraError } from '../errors.js';

export type EndpointProtocol = 'http' | 'http2' | 'grpc' | 'tcp';
export type EndpointSource = 'self' | 'kubernetes' | 'static';

export interface ServiceEndpoint {
  readonly host: string;
  readonly port: number;
  /** The SPIFFE ID the endpoint must present (text form). */
  readonly spiffeId: string;
  readonly protocol: EndpointProtocol;
  readonly ready: boolean;
  readonly zone: string;
  /** 1..1000, default 100. */
  readonly weight: number;
  readonly source: EndpointSource;
}

export const DEFAULT_ENDPOINT_WEIGHT = 100;
const SERVICE_NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;
const PROTOCOLS: ReadonlySet<string> = new Set(['http', 'http2', 'grpc', 'tcp']);
const SOURCES: ReadonlySet<string> = new Set(['self', 'kubernetes', 'static']);

/** A service name as DESIGN section 11 allows it: `[a-z0-9.-]+`, starting and ending with a letter or digit. */
export function isServiceName(name: string): boolean {
  return SERVICE_NAME.test(name);
}

/** "host:port", brackets around an IPv6 host: the endpoint's identity within its service. */
export function endpointAddress(e: Pick<ServiceEndpoint, 'host' | 'port'>): string {
  return e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}

/** Splits "host:port" / "[v6]:port"; null when it is not one. */
export function splitAddress(text: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text);
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return { host: (m[1] ?? m[2])!, port };
}

export function endpointToWire(e: ServiceEndpoint): EndpointMsg {
  return { address: endpointAddress(e), spiffe_id: e.spiffeId, protocol: e.protocol, ready: e.ready, zone: e.zone, weight: e.weight, source: e.source };
}

/**
 * The endpoint a wire message describes, checked whole; throws TESSERA_ERR_DISCOVERY_BAD_ENDPOINT naming the fault.
 * `spiffeIdOk` checks the ID's syntax (the caller's SpiffeId parser), kept out of common/routing's dependencies.
 */
export function endpointFromWire(m: EndpointMsg, spiffeIdOk: (id: string) => boolean): ServiceEndpoint {
  const bad = (what: string): never => {
    throw new TesseraError('TESSERA_ERR_DISCOVERY_BAD_ENDPOINT', `endpoint ${JSON.stringify(String(m.address).slice(0, 80))}: ${what}`);
  };
  const a = splitAddress(String(m.address ?? ''));
  if (!a) bad('address is not host:port');
  if (!spiffeIdOk(String(m.spiffe_id ?? ''))) bad('spiffe_id is not a SPIFFE ID');
  const protocol = m.protocol || 'http';
  if (!PROTOCOLS.has(protocol)) bad(`protocol ${JSON.stringify(String(protocol).slice(0, 20))} is not http, http2, grpc or tcp`);
  const weight = m.weight ? Number(m.weight) : DEFAULT_ENDPOINT_WEIGHT;
  if (!Number.isInteger(weight) || weight < 1 || weight > 1000) bad('weight is not 1..1000');
  const source = m.source || 'self';
  if (!SOURCES.has(source)) bad('source is not self, kubernetes or static');
  const zone = String(m.zone ?? '');
  if (zone.length > 63) bad('zone is longer than 63 characters');
  return { host: a!.host, port: a!.port, spiffeId: m.spiffe_id, protocol: protocol as EndpointProtocol, ready: m.ready === true, zone, weight, source: source as EndpointSource };
}

/** Same endpoint, same attributes (an update that changes nothing is not an update). */
export function sameEndpoint(a: ServiceEndpoint, b: ServiceEndpoint): boolean {
  return a.host === b.host && a.port === b.port && a.spiffeId === b.spiffeId && a.protocol === b.protocol && a.ready === b.ready && a.zone === b.zone && a.weight === b.weight && a.source === b.source;
}
