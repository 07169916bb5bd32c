// Keeps Discovery/Register open while the proxy runs: sends the complete set of this proxy's registrations (its
// inbound listeners with `service:`), again whenever readiness changes or the proxy starts draining, and after
// every reconnect (jittered backoff) or SVID rotation. Readiness is looked at every second until the proxy is
// ready (callers get a new endpoint soon after it can serve), then every ten: an idle proxy is not woken each
// second for a state that rarely changes, and draining, the change that must reach callers first, is sent at once.
// Refusals are logged by code only.
import type { BackoffOptions } from '../../../common/backoff.js';
import type { RegisterRequestMsg, RegisterResponseMsg } from '../../../common/contract/discovery-v1.js';
import { describeError, TesseraError } from '../../../common/errors.js';
import { type EndpointProtocol, endpointAddress, isServiceName, splitAddress } from '../../../common/routing/service-endpoint.js';
import { realTimers, type Timers } from '../../../shared-io/timers.js';
import type { InboundConfig } from '../config/proxy-config.js';
import type { RegisterStream } from '../identity/control-plane-client.js';
import type { IssuedSvid } from '../identity/control-plane-svid-source.js';
import { ReconnectingStream, type StreamCallbacks } from '../identity/reconnecting-stream.js';

/** One inbound listener as registered: where callers dial it and what it speaks. */
export interface PlannedRegistration {
  readonly service: string;
  /** host:port ("[v6]:port"). */
  readonly address: string;
  readonly protocol: EndpointProtocol;
  readonly zone: string;
  readonly weight: number;
}

/**
 * The registrations of the inbound listeners with `service:`: at `advertise`, else at the listen host with the
 * port actually bound (`boundPort`, for `listen: …:0`). An advertised port 0 also takes the bound port.
 */
export function plannedRegistrations(inbound: readonly InboundConfig[], boundPort: (listener: string) => number | undefined): PlannedRegistration[] {
  return inbound.flatMap((l) => {
    const r = l.registration;
    if (!r) return [];
    const at = r.advertise ?? l.listen;
    const port = at.port || boundPort(l.name) || l.listen.port;
    return [{ service: r.service, address: endpointAddress({ host: at.host, port }), protocol: l.protocol, zone: r.zone, weight: r.weight }];
  });
}

export type RegistrationEvent =
  | { readonly kind: 'sent'; readonly ready: boolean; readonly count: number }
  | { readonly kind: 'answered'; readonly accepted: number; readonly refused: readonly { readonly service: string; readonly address: string; readonly code: string }[] }
  | { readonly kind: 'disconnected'; readonly error: string; readonly retryInMs: number };

export interface RegistrationClientOptions {
  /** Opens Discovery/Register with this SVID as client certificate (ControlPlaneClient.register). */
  readonly open: (svid: IssuedSvid, cb: StreamCallbacks<RegisterResponseMsg>) => RegisterStream;
  readonly currentSvid: () => IssuedSvid | undefined;
  readonly registrations: readonly PlannedRegistration[];
  /** The proxy's readiness: an endpoint not ready is registered with ready=false (known, not picked). */
  readonly ready: () => boolean;
  /** How often readiness is looked at while the proxy is not ready (a change is sent at once when seen); default 1 s. */
  readonly pollMs?: number;
  /** How often it is looked at while the proxy is ready: a ready proxy turning not ready is seen within this; default 10 s. */
  readonly readyPollMs?: number;
  /** How long setDraining() and stop() wait for the control plane's answer; default 2 s. */
  readonly answerTimeoutMs?: number;
  readonly onEvent?: (e: RegistrationEvent) => void;
  readonly timers?: Timers;
  readonly random?: () => number;
  readonly backoff?: BackoffOptions;
  /** The reconnect delay by attempt (the control-plane endpoints' full jitter); wins over `backoff`. */
  readonly retryDelayMs?: (attempt: number) => number;
}

const CODE = /^TESSERA_ERR_[A-Z0-9_]{1,60}$/;

/** The Register call open now: requests sent and responses received on it (one answer per request, in order). */
interface OpenCall {
  stream: RegisterStream;
  lastKey: string | undefined;
  sent: number;
  answered: number;
  waiters: { upTo: number; done: () => void }[];
}

export class RegistrationClient {
  readonly #o: RegistrationClientOptions;
  readonly #timers: Timers;
  readonly #stream: ReconnectingStream<RegisterResponseMsg>;
  /** The call open now; `sent`/`answered` count requests and responses on it (one answer per request). */
  #call: OpenCall | undefined;
  #draining = false;
  #started = false;
  #poll: unknown;

  constructor(opts: RegistrationClientOptions) {
    this.#o = opts;
    this.#timers = opts.timers ?? realTimers;
    this.#stream = new ReconnectingStream<RegisterResponseMsg>({
      open: (cb) => {
        const svid = opts.currentSvid();
        if (!svid) throw new TesseraError('TESSERA_ERR_DISCOVERY_NO_SVID', 'no SVID yet to register with');
        const call: OpenCall = { stream: undefined as unknown as RegisterStream, lastKey: undefined, sent: 0, answered: 0, waiters: [] };
        call.stream = opts.open(svid, {
          onMessage: (m) => {
            call.answered++;
            cb.onMessage(m);
            this.#release(call, false);
          },
          onClose: (e) => {
            if (this.#call === call) this.#call = undefined;
            this.#release(call, true);
            cb.onClose(e);
          },
        });
        this.#call = call;
        this.#sync();
        return call.stream;
      },
      onMessage: (m) => this.#onResponse(m),
      onDisconnect: (error, retryInMs) => opts.onEvent?.({ kind: 'disconnected', error: error === undefined ? 'stream ended' : describeError(error), retryInMs }),
      timers: this.#timers,
      ...(opts.random ? { random: opts.random } : {}),
      ...(opts.backoff ? { backoff: opts.backoff } : {}),
      ...(opts.retryDelayMs ? { retryDelayMs: opts.retryDelayMs } : {}),
    });
  }

  /** True while a Register call is open. */
  get connected(): boolean {
    return this.#call !== undefined;
  }

  get draining(): boolean {
    return this.#draining;
  }

  start(): void {
    if (this.#o.registrations.length === 0 || this.#started) return;
    this.#started = true;
    this.#stream.start();
    this.#look();
  }

  /** Looks at readiness (sending a change) and schedules the next look at the pace of what it saw. */
  #look(): void {
    this.#poll = undefined;
    if (!this.#started) return;
    const ready = this.#ready();
    this.#sync(ready);
    this.#poll = this.#timers.setTimeout(() => this.#look(), ready ? (this.#o.readyPollMs ?? 10_000) : (this.#o.pollMs ?? 1_000));
  }

  #ready(): boolean {
    return !this.#draining && this.#o.ready();
  }

  /** Reopens the call with the current SVID (after each rotation). */
  restart(): void {
    this.#stream.restart();
  }

  /** Looks at readiness now and sends the set if it changed. */
  refresh(): void {
    this.#sync();
  }

  /**
   * Marks every registration not ready at once (SIGTERM, before the listeners drain) so callers stop picking this
   * endpoint. Resolves when the control plane has answered that request, or after answerTimeoutMs, or at once
   * when no call is open (the next call sends ready=false).
   */
  setDraining(): Promise<void> {
    this.#draining = true;
    return this.#sendAndWait(this.#sync());
  }

  /** Withdraws the registrations (an empty set, answered or timed out), then closes the call. */
  async stop(): Promise<void> {
    this.#started = false;
    if (this.#poll !== undefined) this.#timers.clearTimeout(this.#poll);
    this.#poll = undefined;
    const call = this.#call;
    if (call) {
      await this.#sendAndWait(this.#send(call, { registrations: [] }, 'withdrawn'));
      call.stream.end();
      if (this.#call === call) this.#call = undefined;
    }
    this.#stream.stop();
  }

  #request(ready: boolean): { req: RegisterRequestMsg; key: string } {
    const spiffeId = this.#o.currentSvid()?.id.toString() ?? '';
    const req: RegisterRequestMsg = {
      registrations: this.#o.registrations.map((r) => ({
        service: r.service,
        endpoint: { address: r.address, spiffe_id: spiffeId, protocol: r.protocol, ready, zone: r.zone, weight: r.weight, source: 'self' },
      })),
    };
    return { req, key: `${spiffeId}|${ready}` };
  }

  /** Sends the set when it differs from the last one sent on this call; returns the request's number, if sent. */
  #sync(ready?: boolean): number | undefined {
    const call = this.#call;
    if (!call) return undefined;
    const { req, key } = this.#request(ready ?? this.#ready());
    if (key === call.lastKey) return undefined;
    return this.#send(call, req, key);
  }

  #send(call: OpenCall, req: RegisterRequestMsg, key: string): number | undefined {
    try {
      call.stream.send(req);
    } catch {
      return undefined; // the call is ending: its close reconnects, and the new call sends the set
    }
    call.lastKey = key;
    call.sent++;
    this.#o.onEvent?.({ kind: 'sent', ready: req.registrations[0]?.endpoint?.ready ?? false, count: req.registrations.length });
    return call.sent;
  }

  #sendAndWait(seq: number | undefined): Promise<void> {
    const call = this.#call;
    if (!call || seq === undefined || call.answered >= seq) return Promise.resolve();
    return new Promise((ok) => {
      const timer = this.#timers.setTimeout(() => done(), this.#o.answerTimeoutMs ?? 2_000);
      const done = () => {
        this.#timers.clearTimeout(timer);
        ok();
      };
      call.waiters.push({ upTo: seq, done });
    });
  }

  #release(call: OpenCall, all: boolean): void {
    const due = all ? call.waiters : call.waiters.filter((w) => w.upTo <= call.answered);
    call.waiters = all ? [] : call.waiters.filter((w) => w.upTo > call.answered);
    for (const w of due) w.done();
  }

  #onResponse(m: RegisterResponseMsg): void {
    const refused = (Array.isArray(m.refused) ? m.refused : []).slice(0, 100).map((r) => ({
      // Codes only, and only well-formed ones: the control plane's texts are not echoed into the logs.
      service: isServiceName(String(r.service)) ? r.service : '?',
      address: splitAddress(String(r.address)) ? r.address : '?',
      code: CODE.test(String(r.code)) ? r.code : 'unknown',
    }));
    this.#o.onEvent?.({ kind: 'answered', accepted: Array.isArray(m.accepted) ? m.accepted.length : 0, refused });
  }
}
