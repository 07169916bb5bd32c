// When to renew the SVID, as pure functions of wall-clock time: renewal point with jitter, retry backoff, the
// last-10 % readiness rule, when to look again. The caller re-asks at least every few seconds, so a suspended host
// or a stopped timer cannot skip a renewal: every answer is derived from "now" and the SVID's own validity, never
// from elapsed timers. That validity is on this host's clock: the control plane's NotBefore/NotAfter moved by the
// offset the answer showed (localValidity), so a host whose clock is off renews when a synchronized one would.
import { type BackoffOptions, backoffDelay } from '../../../common/backoff.js';

/** Renewal happens at this fraction of the lifetime (NotBefore → NotAfter) ... */
export const RENEW_FRACTION = 0.5;
/** ... moved by up to ±10 % of that point, so a fleet issued together does not renew together. */
export const RENEW_JITTER = 0.1;
/** The share of the lifetime, at its end, in which a non-renewed SVID makes the proxy not ready. */
export const LAST_FRACTION = 0.1;
/**
 * The soonest a renewal point may be after its SVID arrived, as a share of the lifetime: a synchronized host's is
 * at least 0.45 - 1/3 of it later (the control plane backdates at most a third of the lifetime), so this only ever
 * holds a renewal back when the clock-offset estimate is wrong, and then a proxy renews at most 10 times a lifetime.
 */
export const MIN_RENEW_AFTER_FRACTION = 0.1;

export const DEFAULT_RETRY_BACKOFF: BackoffOptions = Object.freeze({ initialMs: 500, maxMs: 30_000, multiplier: 2, jitter: 0.2 });

/** The wall-clock instant (ms) at which an SVID valid [notBeforeMs, notAfterMs] should be renewed. */
export function renewAtMs(notBeforeMs: number, notAfterMs: number, random: () => number = Math.random): number {
  const lifetime = Math.max(0, notAfterMs - notBeforeMs);
  const fraction = RENEW_FRACTION * (1 + RENEW_JITTER * (2 * random() - 1));
  return Math.round(notBeforeMs + lifetime * fraction);
}

/** An SVID's validity and renewal point on this host's clock (ms). */
export interface LocalValidity {
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  readonly renewAtMs: number;
}

/**
 * Where the schedule places an SVID on this host's clock. Its NotBefore/NotAfter are the control plane's clock,
 * moved by `clockOffsetMs` (local minus control plane, clock-offset.ts): the renewal point is then the instant a
 * host whose clock agrees with the control plane's renews at, whichever way this one is off, and expiry is the
 * instant peers with that time (and the control plane, which judges a renewal's client certificate) see it expire.
 * The same as anchoring the point to the local arrival time, `issuedAtMs + (renewAt - NotBefore)`, minus the SVID's
 * age on arrival by the control plane's clock (its backdate, which the answer's date shows): anchored without that
 * subtraction, a proxy would renew a backdate later than intended, for every clock. Never sooner than a tenth of
 * the lifetime after arrival (MIN_RENEW_AFTER_FRACTION), so no estimate can make a fresh SVID due at once.
 */
export function localValidity(
  svid: { readonly notBeforeMs: number; readonly notAfterMs: number; readonly issuedAtMs: number; readonly clockOffsetMs?: number | undefined },
  random: () => number = Math.random,
): LocalValidity {
  const offset = svid.clockOffsetMs ?? 0;
  const notBeforeMs = svid.notBeforeMs + offset;
  const notAfterMs = svid.notAfterMs + offset;
  const soonest = Math.round(svid.issuedAtMs + Math.max(0, notAfterMs - notBeforeMs) * MIN_RENEW_AFTER_FRACTION);
  return { notBeforeMs, notAfterMs, renewAtMs: Math.max(renewAtMs(notBeforeMs, notAfterMs, random), soonest) };
}

/** True once `nowMs` is within the last 10 % of the validity period (or past it). */
export function inLastTenth(nowMs: number, notBeforeMs: number, notAfterMs: number): boolean {
  const lifetime = Math.max(0, notAfterMs - notBeforeMs);
  return nowMs >= notAfterMs - lifetime * LAST_FRACTION;
}

/** What the identity source knows; the schedule needs nothing else. */
export interface RenewalState {
  /** The current SVID's validity on this host's clock (localValidity), absent before the first one. */
  readonly svid?: { readonly notBeforeMs: number; readonly notAfterMs: number; readonly renewAtMs: number };
  /** Consecutive failed attempts since the last success. */
  readonly failures: number;
  /** Earliest wall-clock time for the next attempt after a failure (backoff). */
  readonly retryAtMs?: number;
  /** Whether fresh attestation evidence can be obtained (a token file); an inline join token is single-use. */
  readonly canReattest: boolean;
  /** The control plane refused to renew the current SVID: its serial is banned (or was renewed from a banned one). */
  readonly serialBanned?: boolean;
  /** The control plane refused the current SVID as revoked (its serial or its ID banned): peers refuse it too. */
  readonly revoked?: boolean;
}

export type RenewalDecision =
  /** Nothing to do before `untilMs` (a hint for the tick; the tick re-asks anyway). */
  | { readonly kind: 'wait'; readonly untilMs: number }
  /** No SVID yet: attest with the bootstrap evidence. */
  | { readonly kind: 'attest' }
  /** Renew over mTLS with the current, still valid SVID. */
  | { readonly kind: 'renew' }
  /** The SVID has expired: attest again with fresh evidence. */
  | { readonly kind: 'reattest' }
  /** The SVID has expired and no evidence can be had: report not-ready, keep waiting for an operator. */
  | { readonly kind: 'expired'; readonly reason: string };

export function renewalDecision(nowMs: number, state: RenewalState): RenewalDecision {
  const backingOff = state.retryAtMs !== undefined && nowMs < state.retryAtMs;
  const svid = state.svid;
  if (!svid) return backingOff ? { kind: 'wait', untilMs: state.retryAtMs! } : { kind: 'attest' };
  if (nowMs >= svid.notAfterMs) {
    if (!state.canReattest) {
      // Not "svid expired" again: /ready puts that before it (identityReadiness), and it read twice (audit 61d).
      return { kind: 'expired', reason: 'the join token is single-use: give the proxy a new join token (joinTokenFile) or restart it with one' };
    }
    return backingOff ? { kind: 'wait', untilMs: state.retryAtMs! } : { kind: 'reattest' };
  }
  // A banned serial never renews, and peers refuse it: attest afresh now (a new serial) rather than at expiry.
  if (state.serialBanned && state.canReattest) return backingOff ? { kind: 'wait', untilMs: state.retryAtMs! } : { kind: 'reattest' };
  if (nowMs < svid.renewAtMs) return { kind: 'wait', untilMs: svid.renewAtMs };
  return backingOff ? { kind: 'wait', untilMs: state.retryAtMs! } : { kind: 'renew' };
}

/**
 * Retry time after the n-th consecutive failure (1-based). While the SVID lives, the wait is also capped at a
 * quarter of its remaining life (never below the initial backoff), so retries get denser towards expiry instead
 * of sleeping through it; and never later than the expiry itself, where the decision turns to re-attestation.
 */
export function retryAtMs(nowMs: number, failures: number, notAfterMs: number | undefined, opts: BackoffOptions = DEFAULT_RETRY_BACKOFF, random: () => number = Math.random): number {
  const delay = backoffDelay(Math.max(0, failures - 1), opts, random);
  if (notAfterMs === undefined || nowMs >= notAfterMs) return nowMs + delay;
  const cap = Math.max(opts.initialMs, (notAfterMs - nowMs) / 4);
  return Math.min(Math.round(nowMs + Math.min(delay, cap)), notAfterMs);
}

/** The shortest pause between two looks: a decision that is due again at once waits this long, never spins. */
export const MIN_CHECK_MS = 1_000;

/**
 * How long the caller waits before it looks again: until `untilMs` (what a 'wait' decision waits for), but at least
 * MIN_CHECK_MS and at most `maxMs`, the longest the wall clock goes unread (a clock step, or a host that slept past
 * the instant, is noticed within it). No instant to wait for (an expired SVID without evidence): `maxMs`.
 */
export function nextCheckInMs(nowMs: number, untilMs: number | undefined, maxMs: number): number {
  if (untilMs === undefined) return maxMs;
  return Math.min(maxMs, Math.max(MIN_CHECK_MS, untilMs - nowMs));
}

export type Readiness = { readonly ready: true } | { readonly ready: false; readonly reason: string };

/**
 * Readiness of the identity: false without an SVID, once expired, once the control plane refused it as revoked
 * (every peer refuses it then: audit 53b F5), or in the last 10 % with renewal failing.
 */
export function identityReadiness(nowMs: number, state: RenewalState, lastError?: string): Readiness {
  const svid = state.svid;
  if (!svid) return { ready: false, reason: `no svid yet${lastError ? `: ${lastError}` : ''}` };
  if (state.revoked) return { ready: false, reason: `svid revoked by the control plane${lastError ? `: ${lastError}` : ''}` };
  if (nowMs >= svid.notAfterMs) return { ready: false, reason: `svid expired${lastError ? `: ${lastError}` : ''}` };
  if (inLastTenth(nowMs, svid.notBeforeMs, svid.notAfterMs)) {
    return { ready: false, reason: `svid in last 10% of lifetime and renewal failing${lastError ? `: ${lastError}` : ''}` };
  }
  return { ready: true };
}
