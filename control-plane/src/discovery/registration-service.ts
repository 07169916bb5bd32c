// tessera.discovery.v1.Discovery/Register: a proxy registers its own inbound listeners for as long as the call is
// open. Each request is the caller's complete set; an endpoint naming any SPIFFE ID but the caller's proven one, or
// a service that ID may not serve, is refused (and audited), a malformed one refused; the registry keeps them for a
// grace after the call ends. A request is bounded as a whole (refused entries count), its refusals are reported
// once per request, and each SPIFFE ID's requests are rate-limited: a caller cannot turn refusals into disk writes.
// New service names are bounded per ID and in total (service-name-budget.ts), so no tenant can grow the registry
// past what a proxy watching every service keeps.
import { isIP } from 'node:net';
import type * as grpc from '@grpc/grpc-js';
import type { Clock } from '../../../common/clock.js';
import type { RegisterRequestMsg, RegisterResponseMsg, RegistrationMsg, RegistrationRefusalMsg } from '../../../common/contract/discovery-v1.js';
import { type ErrorCode, TesseraError } from '../../../common/errors.js';
import { endpointAddress, endpointFromWire, endpointToWire, isServiceName, type ServiceEndpoint } from '../../../common/routing/service-endpoint.js';
import { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import { RejectedMessage } from '../api/guarded-service.js';
import { admitStream, authenticateStream, type OpenStream, OpenStreams, streamOpenRate, type StreamCallerDeps } from '../api/stream-caller.js';
import { type RateLimit, RateLimiter } from '../issuance/rate-limiter.js';
import type { MayServe } from './service-identities.js';
import { DEFAULT_MAX_REGISTRY_SERVICES, DEFAULT_MAX_SERVICES_PER_ID, serviceNameBudget } from './service-name-budget.js';
import type { Registration, RegistrationSession, ServiceRegistry } from './service-registry.js';

/** Most registrations one call may hold (a proxy has a handful of inbound listeners). */
export const MAX_REGISTRATIONS_PER_CALL = 64;
/**
 * Most registrations one SPIFFE ID may hold across its calls, live or in their grace: replicas share an ID, but a
 * workload that opens call after call cannot grow the registry (and the store) without bound.
 */
export const MAX_REGISTRATIONS_PER_ID = 1024;
/**
 * Most entries one request may hold, accepted or refused: 4 x the accepted bound leaves room for a proxy's
 * mistakes; more ends the call with TESSERA_ERR_DISCOVERY_TOO_MANY (the 64 KiB request cap alone let ~6,000 in).
 */
export const MAX_ENTRIES_PER_REQUEST = 4 * MAX_REGISTRATIONS_PER_CALL;
/**
 * Requests per SPIFFE ID (every call of its replicas together): a proxy sends its set when a call opens and when
 * its readiness changes, so this covers a rollout of dozens of replicas; past it the call ends with
 * TESSERA_ERR_DISCOVERY_RATE_LIMITED and the proxy reconnects with backoff, its endpoints in their grace meanwhile.
 */
export const DEFAULT_REGISTER_RATE_LIMIT: RateLimit = Object.freeze({ burst: 120, perMinute: 240 });
/** Refused entries a request's report carries in full (the rest only counted by code). */
export const REFUSAL_EXAMPLES = 3;
/** Rate-limit buckets kept before full ones are swept. */
const SWEEP_ABOVE = 1024;

export interface RefusedEntry {
  readonly code: ErrorCode;
  readonly service: string;
  readonly address: string;
  /** The SPIFFE ID the registration named (for NOT_YOUR_ID). */
  readonly claimed?: string;
}

/** The refusals of one request, reported once. */
export interface RegistrationRefusals {
  /** The caller's proven SPIFFE ID. */
  readonly caller: string;
  readonly peer: string;
  /** Refused entries by code. */
  readonly counts: Readonly<Partial<Record<ErrorCode, number>>>;
  /** The first few refused entries, in request order. */
  readonly examples: readonly RefusedEntry[];
}

export interface RegistrationHubOptions extends StreamCallerDeps {
  readonly registry: ServiceRegistry;
  readonly clock: Clock;
  readonly maxRegistrations?: number;
  readonly maxRegistrationsPerId?: number;
  readonly maxEntriesPerRequest?: number;
  /** discovery.maxServices: the registry's total past which a new name is refused (default DEFAULT_MAX_REGISTRY_SERVICES). */
  readonly maxServices?: number;
  /** discovery.maxServicesPerIdentity: distinct names one SPIFFE ID may hold (default DEFAULT_MAX_SERVICES_PER_ID). */
  readonly maxServicesPerId?: number;
  /** Requests per SPIFFE ID (default DEFAULT_REGISTER_RATE_LIMIT). */
  readonly rateLimit?: RateLimit;
  /** Which services the caller may serve (service-identities.ts). */
  readonly mayServe: MayServe;
  /** A request's refused registrations, once per request that has any (counted; NOT_YOUR_ID and SERVICE_NOT_ALLOWED audited). */
  readonly onRegistrationsRefused?: (r: RegistrationRefusals) => void;
}

interface Caller extends OpenStream {
  readonly spiffeId: string;
  readonly call: grpc.ServerDuplexStream<unknown, RegisterResponseMsg>;
  readonly session: RegistrationSession;
}

export class RegistrationHub {
  readonly #o: RegistrationHubOptions;
  readonly #limiter: RateLimiter;
  // A call that leaves the set, however it ended, starts its registrations' grace.
  readonly #callers: OpenStreams<Caller>;

  constructor(opts: RegistrationHubOptions) {
    this.#o = opts;
    this.#limiter = new RateLimiter(opts.rateLimit ?? DEFAULT_REGISTER_RATE_LIMIT, opts.clock);
    this.#callers = new OpenStreams<Caller>({ onRemoved: (c) => c.session.close(), opens: new RateLimiter(opts.openRate ?? streamOpenRate(opts), opts.clock) });
  }

  get callers(): number {
    return this.#callers.size;
  }

  /** The short tick: end calls whose client SVID expired or whose caller was banned (their grace starts). */
  tick(): void {
    this.#callers.sweep(this.#o.clock.nowMs(), this.#o.admit);
  }

  /** Ends every call with OK (shutdown); call after registry.stop() so what they held stays persisted. */
  endAll(): void {
    this.#callers.endAll();
  }

  handlers(): grpc.UntypedServiceImplementation {
    return { Register: (call: grpc.ServerDuplexStream<RegisterRequestMsg | RejectedMessage, RegisterResponseMsg>) => this.#register(call) };
  }

  #register(call: grpc.ServerDuplexStream<RegisterRequestMsg | RejectedMessage, RegisterResponseMsg>): void {
    const peer = authenticateStream(call, this.#o);
    if (!peer || !admitStream(call, peer, this.#callers, this.#o)) return;
    const c: Caller = { peer, spiffeId: peer.spiffeId.toString(), call, session: this.#o.registry.openSession(peer.spiffeId.toString()) };
    this.#callers.add(c);
    call.on('end', () => {
      // The proxy half-closed: it withdraws (after the grace); answer with OK.
      this.#callers.remove(c);
      call.end();
    });
    call.on('data', (req: RegisterRequestMsg | RejectedMessage) => {
      if (!this.#callers.has(c)) return;
      const refused = req instanceof RejectedMessage ? { code: req.code, detail: req.size === undefined ? 'malformed request' : `request of ${req.size} bytes` } : this.#admitRequest(c, req);
      if (refused) {
        // Refused like a Watch's bad request: on the record and counted, then the call ends with the code (a
        // proxy reconnects with backoff and sends its set again).
        this.#o.onRefused?.(refused.code, call.getPeer(), refused.detail, c.spiffeId);
        this.#callers.drop(c, new TesseraError(refused.code));
        return;
      }
      call.write(this.#apply(c, req as RegisterRequestMsg));
    });
  }

  /** Why a decoded request is refused whole, if it is: its ID over its rate, or more entries than any set holds. */
  #admitRequest(c: Caller, req: RegisterRequestMsg): { code: ErrorCode; detail: string } | undefined {
    if (this.#limiter.size > SWEEP_ABOVE) this.#limiter.sweep();
    if (!this.#limiter.take(c.spiffeId)) return { code: 'TESSERA_ERR_DISCOVERY_RATE_LIMITED', detail: `Register requests of ${c.spiffeId}`.slice(0, 200) };
    const n = req.registrations?.length ?? 0;
    const max = this.#o.maxEntriesPerRequest ?? MAX_ENTRIES_PER_REQUEST;
    return n > max ? { code: 'TESSERA_ERR_DISCOVERY_TOO_MANY', detail: `request of ${n} registrations (at most ${max})` } : undefined;
  }

  /** Checks each registration, hands the accepted set to the registry, and says what was accepted and refused. */
  #apply(c: Caller, req: RegisterRequestMsg): RegisterResponseMsg {
    const perId = (this.#o.maxRegistrationsPerId ?? MAX_REGISTRATIONS_PER_ID) - this.#o.registry.heldBy(c.spiffeId, c.session.id);
    const max = Math.min(this.#o.maxRegistrations ?? MAX_REGISTRATIONS_PER_CALL, perId);
    const from = peerHost(c.call.getPeer());
    const budget = serviceNameBudget(this.#o.registry, c.spiffeId, c.session.id, { maxServices: this.#o.maxServices ?? DEFAULT_MAX_REGISTRY_SERVICES, maxServicesPerId: this.#o.maxServicesPerId ?? DEFAULT_MAX_SERVICES_PER_ID });
    const accepted: Registration[] = [];
    const refused: RegistrationRefusalMsg[] = [];
    const counts: Partial<Record<ErrorCode, number>> = {};
    const examples: RefusedEntry[] = [];
    const seen = new Set<string>();
    for (const r of req.registrations ?? []) {
      const service = String(r?.service ?? '');
      const address = String(r?.endpoint?.address ?? '');
      const refuse = (code: ErrorCode, claimed?: string) => {
        refused.push({ service: service.slice(0, 253), address: address.slice(0, 100), code });
        counts[code] = (counts[code] ?? 0) + 1;
        if (examples.length < REFUSAL_EXAMPLES) examples.push({ code, service: service.slice(0, 253), address: address.slice(0, 100), ...(claimed !== undefined ? { claimed: claimed.slice(0, 2048) } : {}) });
      };
      if (!isServiceName(service)) {
        refuse('TESSERA_ERR_DISCOVERY_BAD_SERVICE_NAME');
        continue;
      }
      if (!r.endpoint) {
        refuse('TESSERA_ERR_DISCOVERY_BAD_ENDPOINT');
        continue;
      }
      // An endpoint registers itself, never another workload.
      if (r.endpoint.spiffe_id !== c.spiffeId) {
        refuse('TESSERA_ERR_DISCOVERY_NOT_YOUR_ID', String(r.endpoint.spiffe_id ?? ''));
        continue;
      }
      // And only for a service its ID may serve: proving who it is says nothing of which traffic it may draw.
      if (!this.#o.mayServe(service, c.spiffeId)) {
        refuse('TESSERA_ERR_DISCOVERY_SERVICE_NOT_ALLOWED');
        continue;
      }
      let endpoint: ServiceEndpoint;
      try {
        endpoint = withHost(endpointFromWire({ ...r.endpoint, source: 'self' }, (id) => SpiffeId.tryParse(id).ok), from);
      } catch {
        refuse('TESSERA_ERR_DISCOVERY_BAD_ENDPOINT');
        continue;
      }
      const key = `${service} ${endpointAddress(endpoint)}`;
      if (seen.has(key)) continue;
      if (accepted.length >= max) {
        refuse('TESSERA_ERR_DISCOVERY_TOO_MANY');
        continue;
      }
      // Last, so that only an entry otherwise accepted spends the name budget.
      const over = budget(service);
      if (over) {
        refuse(over);
        continue;
      }
      seen.add(key);
      accepted.push({ service, endpoint });
    }
    c.session.replace(accepted);
    if (refused.length > 0) this.#o.onRegistrationsRefused?.({ caller: c.spiffeId, peer: c.call.getPeer(), counts, examples });
    return { accepted: accepted.map((a): RegistrationMsg => ({ service: a.service, endpoint: endpointToWire(a.endpoint) })), refused };
  }

}

/** The endpoint with an unspecified host (0.0.0.0, ::) replaced by the address the call came from. */
function withHost(e: ServiceEndpoint, from: string | undefined): ServiceEndpoint {
  if (e.host !== '0.0.0.0' && e.host !== '::' && e.host !== '[::]') return e;
  if (!from) throw new TesseraError('TESSERA_ERR_DISCOVERY_BAD_ENDPOINT', 'unspecified host and no peer address');
  return { ...e, host: from };
}

/** The IP of a grpc-js peer string ("1.2.3.4:5", "::1:5", "[::1]:5"); IPv4-mapped IPv6 as plain IPv4. */
export function peerHost(peer: string): string | undefined {
  const i = peer.lastIndexOf(':');
  if (i <= 0) return undefined;
  let host = peer.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  if (/^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(host)) host = host.slice(7);
  return isIP(host) ? host : undefined;
}
