// One endpoint as its service's balancer holds it: resource, latency estimate, failure penalty, load, counts,
// slow-start window and outlier record; its state and admin view; and the lease an attempt holds on it.
import type { ServiceEndpoint } from '../../../common/routing/service-endpoint.js';
import type { AwaitingAttempt, AwaitingAttempts } from './awaiting-attempts.js';
import type { FailurePenalty } from './failure-penalty.js';
import type { AttemptOutcome, EndpointView, Lease } from './lease.js';
import type { OutlierTrack } from './outlier-detector.js';
import type { PeakEwma } from './peak-ewma.js';

export type EndpointState = EndpointView['state'];

/** A slow-starting endpoint is a candidate with at least this share of its weight. */
const SLOW_START_FLOOR = 0.1;

export interface BalancedEndpoint<R> {
  endpoint: ServiceEndpoint;
  readonly address: string;
  readonly resource: R;
  ewma: PeakEwma;
  /** What its failed attempts add to its cost: a latency it costs at least, fading (failure-penalty.ts). */
  penalty: FailurePenalty;
  readonly outlier: OutlierTrack;
  /** When slow start began (added, or ready again) and when it is over. */
  rampFromMs: number;
  rampToMs: number;
  outstanding: number;
  /**
   * Attempts still waiting for their response head, in the order they were placed: the first one's wait is a lower
   * bound on the endpoint's latency that its estimate, fed only by answers, lacks.
   */
  readonly awaiting: AwaitingAttempts;
  requests: number;
  failures: number;
  /** Removed from the service: its resource is retired, it stays visible until its last attempt ends. */
  draining: boolean;
}

export function stateOf(e: BalancedEndpoint<unknown>): EndpointState {
  if (e.draining) return 'draining';
  if (!e.endpoint.ready) return 'not_ready';
  return e.outlier.ejected ? 'ejected' : 'ready';
}

/** Its weight as a P2C candidate: during slow start it ramps linearly from 10 % to 100 % of the weight. */
export function candidateWeight(e: BalancedEndpoint<unknown>, nowMs: number): number {
  const w = e.endpoint.weight;
  if (nowMs >= e.rampToMs) return w;
  const progress = Math.max(0, (nowMs - e.rampFromMs) / (e.rampToMs - e.rampFromMs));
  return w * (SLOW_START_FLOOR + (1 - SLOW_START_FLOOR) * progress);
}

/**
 * Its P2C cost: latency × (attempts in flight + the one being placed), where the latency is at least how long its
 * oldest unanswered attempt has waited (an endpoint that stops answering gets no samples, and its estimate alone
 * would fall while requests pile up on it) and at least its failure penalty (an endpoint that fails fast answers
 * quickly or not at all, and its estimate alone would make it the cheapest).
 */
export function costOf(e: BalancedEndpoint<unknown>, nowMs: number, floorMs: number): number {
  return latencyOf(e, nowMs, floorMs) * (e.outstanding + 1);
}

/** What one request to `e` is expected to wait, its load aside: the latency part of costOf. */
export function latencyOf(e: BalancedEndpoint<unknown>, nowMs: number, floorMs: number): number {
  const latency = Math.max(e.ewma.estimate(nowMs, floorMs), e.penalty.valueMs(nowMs));
  const oldest = e.awaiting.oldest;
  return oldest === null ? latency : Math.max(latency, nowMs - oldest.placedAtMs);
}

/**
 * Left out of the draw while another endpoint is not: its failure penalty is still above twice the service's typical
 * latency (two failures in a row, or one that made an attempt wait that long). Its cost would say the same, but P2C
 * compares two endpoints drawn at random, and when both are failing one of them wins: past maxEjectionPercent, with
 * 3 of 4 endpoints failing, half the draws held no healthy one.
 */
export function heldOut(e: BalancedEndpoint<unknown>, nowMs: number, typicalMs: number): boolean {
  return e.penalty.valueMs(nowMs) > 2 * typicalMs;
}

export function viewOf(e: BalancedEndpoint<unknown>, nowMs: number, floorMs: number): EndpointView {
  const { spiffeId, protocol, zone, weight } = e.endpoint;
  const t = e.outlier;
  return {
    address: e.address,
    spiffeId,
    protocol,
    zone,
    weight,
    state: stateOf(e),
    ewmaMs: Math.round(e.ewma.estimate(nowMs, floorMs) * 1000) / 1000,
    penaltyMs: Math.round(e.penalty.valueMs(nowMs) * 1000) / 1000,
    outstanding: e.outstanding,
    requests: e.requests,
    failures: e.failures,
    ejections: t.ejections,
    ...(t.returnsAtMs === undefined ? {} : { returnsAt: new Date(t.returnsAtMs).toISOString() }),
  };
}

/** What every lease calls back into, made once per balancer so that a lease is one small allocation. */
export interface LeaseHooks<R> {
  nowMs(): number;
  /** Every answer's latency, for the service-wide typical latency the estimates decay toward. */
  sample(rttMs: number): void;
  /** The endpoint turned the attempt's stream away unprocessed (Lease.refused), or its 5xx was its own (Lease.blame). */
  refused(e: BalancedEndpoint<R>): void;
  /** `waitedMs`: how long the attempt waited without an answer (0 once one came). */
  end(e: BalancedEndpoint<R>, outcome: AttemptOutcome, waitedMs: number): void;
}

export class BalancerLease<R> implements Lease<R>, AwaitingAttempt {
  readonly address: string;
  readonly endpoint: ServiceEndpoint;
  readonly resource: R;
  /** When the balancer placed this attempt on the endpoint. */
  readonly placedAtMs: number;
  /** Its place among its endpoint's attempts awaiting a head (awaiting-attempts.ts). */
  awaitingPrev: AwaitingAttempt | null = null;
  awaitingNext: AwaitingAttempt | null = null;
  awaitingListed = false;
  /** Cleared by end(): a second end() or a late observe() changes nothing. */
  #hooks: LeaseHooks<R> | undefined;
  /** Kept past end(), for blame(). */
  readonly #blameTo: LeaseHooks<R>;
  readonly #entry: BalancedEndpoint<R>;

  constructor(hooks: LeaseHooks<R>, entry: BalancedEndpoint<R>, nowMs: number) {
    this.#hooks = hooks;
    this.#blameTo = hooks;
    this.#entry = entry;
    this.address = entry.address;
    this.endpoint = entry.endpoint;
    this.resource = entry.resource;
    this.placedAtMs = nowMs;
    entry.awaiting.add(this);
  }

  observe(rttMs: number): void {
    if (!this.#hooks) return;
    this.#entry.awaiting.delete(this);
    this.#entry.ewma.observe(rttMs, this.#hooks.nowMs());
    this.#hooks.sample(rttMs);
  }

  refused(): void {
    this.#hooks?.refused(this.#entry);
  }

  blame(): void {
    this.#blameTo.refused(this.#entry);
  }

  end(outcome: AttemptOutcome): void {
    const h = this.#hooks;
    if (!h) return;
    this.#hooks = undefined;
    const waitedMs = this.#entry.awaiting.delete(this) ? Math.max(0, h.nowMs() - this.placedAtMs) : 0;
    h.end(this.#entry, outcome, waitedMs);
  }
}
