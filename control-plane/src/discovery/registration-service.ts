// tessera.discovery.v1.Discovery/Register: a proxy registers its own inbound listeners for as long as the call is
// open. Each request is the caller's complete set; an endpoint naming any SPIFFE ID but the caller's proven one, or
// a service that ID may not serve, is refused (and audited), a malformed one refused; the registry keeps them for a
// grace after the call ends.
import { isIP } from 'node:net';
import type * as grpc from '@grpc/grpc-js';
import type { Clock } from '../../../common/clock.js';
import type { RegisterRequestMsg, RegisterResponseMsg, RegistrationMsg, RegistrationRefusalMsg } from '../../../common/contract/discovery-v1.js';
import { type ErrorCode, TesseraError } from '../../../common/errors.js';
import { endpointAddress, endpointFromWire, endpointToWire, isServiceName, type ServiceEndpoint } from '../../../common/routing/service-endpoint.js';
import { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import { RejectedMessage } from '../api/guarded-service.js';
import { authenticateStream, type OpenStream, OpenStreams, type StreamCallerDeps } from '../api/stream-caller.js';
import type { MayServe } from './service-identities.js';
import type { Registration, RegistrationSession, ServiceRegistry } from './service-registry.js';

/** Most registrations one call may hold (a proxy has a handful of inbound listeners). */
export const MAX_REGISTRATIONS_PER_CALL = 64;
/**
 * Most registrations one SPIFFE ID may hold across its calls, live or in their grace: replicas share an ID, but a
 * workload that opens call after call cannot grow the registry (and the store) without bound.
 */
export const MAX_REGISTRATIONS_PER_ID = 1024;

export interface RegistrationRefused {
  readonly code: ErrorCode;
  /** The caller's proven SPIFFE ID. */
  readonly caller: string;
  readonly peer: string;
  readonly service: string;
  readonly address: string;
  /** The SPIFFE ID the registration named (for NOT_YOUR_ID). */
  readonly claimed?: string;
}

export interface RegistrationHubOptions extends StreamCallerDeps {
  readonly registry: ServiceRegistry;
  readonly clock: Clock;
  readonly maxRegistrations?: number;
  readonly maxRegistrationsPerId?: number;
  /** Which services the caller may serve (service-identities.ts). */
  readonly mayServe: MayServe;
  /** Each refused registration (counted; NOT_YOUR_ID and SERVICE_NOT_ALLOWED audited). */
  readonly onRegistrationRefused?: (r: RegistrationRefused) => void;
}

interface Caller extends OpenStream {
  readonly spiffeId: string;
  readonly call: grpc.ServerDuplexStream<unknown, RegisterResponseMsg>;
  readonly session: RegistrationSession;
}

export class RegistrationHub {
  readonly #o: RegistrationHubOptions;
  // A call that leaves the set, however it ended, starts its registrations' grace.
  readonly #callers = new OpenStreams<Caller>({ onRemoved: (c) => c.session.close() });

  constructor(opts: RegistrationHubOptions) {
    this.#o = opts;
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
    if (!peer) return;
    const c: Caller = { peer, spiffeId: peer.spiffeId.toString(), call, session: this.#o.registry.openSession(peer.spiffeId.toString()) };
    this.#callers.add(c);
    call.on('end', () => {
      // The proxy half-closed: it withdraws (after the grace); answer with OK.
      this.#callers.remove(c);
      call.end();
    });
    call.on('data', (req: RegisterRequestMsg | RejectedMessage) => {
      if (!this.#callers.has(c)) return;
      if (req instanceof RejectedMessage) {
        // Refused like a Watch's bad request: on the record and counted, then the call ends with the code.
        this.#o.onRefused?.(req.code, call.getPeer(), req.size === undefined ? 'malformed request' : `request of ${req.size} bytes`);
        this.#callers.drop(c, new TesseraError(req.code));
        return;
      }
      call.write(this.#apply(c, req));
    });
  }

  /** Checks each registration, hands the accepted set to the registry, and says what was accepted and refused. */
  #apply(c: Caller, req: RegisterRequestMsg): RegisterResponseMsg {
    const perId = (this.#o.maxRegistrationsPerId ?? MAX_REGISTRATIONS_PER_ID) - this.#o.registry.heldBy(c.spiffeId, c.session.id);
    const max = Math.min(this.#o.maxRegistrations ?? MAX_REGISTRATIONS_PER_CALL, perId);
    const from = peerHost(c.call.getPeer());
    const accepted: Registration[] = [];
    const refused: RegistrationRefusalMsg[] = [];
    const seen = new Set<string>();
    for (const r of req.registrations ?? []) {
      const service = String(r?.service ?? '');
      const address = String(r?.endpoint?.address ?? '');
      const refuse = (code: ErrorCode, claimed?: string) => {
        refused.push({ service: service.slice(0, 253), address: address.slice(0, 100), code });
        this.#o.onRegistrationRefused?.({ code, caller: c.spiffeId, peer: c.call.getPeer(), service: service.slice(0, 253), address: address.slice(0, 100), ...(claimed !== undefined ? { claimed: claimed.slice(0, 2048) } : {}) });
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
      seen.add(key);
      accepted.push({ service, endpoint });
    }
    c.session.replace(accepted);
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
