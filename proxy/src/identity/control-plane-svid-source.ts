// The control-plane identity source: the key is generated here and never leaves; the first SVID comes from
// attestation (join token or Kubernetes token), later ones from renewal over mTLS with the current SVID. Each look
// re-reads the wall clock and asks renewal-schedule.ts what to do; the next look is due when that answer says, and
// never more than `tickMs` later, so no long timer can be missed and an idle proxy is not woken every second.
// An answer refused only because it is not valid yet by this host's clock (skew beyond the CA's backdate) is held
// and installed once it is, unless it has expired for everyone else by then: asking again would spend nothing
// better, and a first attestation's token is already spent. The SVID's times are the control plane's clock: each
// answer also says how far this host's clock is from it (clock-offset.ts), and the schedule runs on the SVID's times
// moved by that offset, so a skewed host renews when a synchronized one would (audit 52a F1: one ahead by over half
// the lifetime renewed every second). A proxy may also start from an SVID it kept across a restart (restore(),
// identity.controlPlane.stateDir): renewed like any other, but if the control plane refuses to renew it, it is
// dropped and the proxy attests. A kept SVID out of its life by this host's clock only is held until valid here
// (restoreWhenValid) or offered to the control plane for renewal first (renewExpiredFirst): its clock decides.
import type { X509Certificate } from 'node:crypto';
import type { Clock } from '../../../common/clock.js';
import { TesseraError, isTesseraError } from '../../../common/errors.js';
import { GRPC_STATUS } from '../../../common/grpc-status-codes.js';
import { createCsr } from '../../../common/pki/csr.js';
import { type KeyPair, generateKeyPair } from '../../../common/pki/keys.js';
import type { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import type { TrustBundle } from '../../../common/spiffe/trust-bundle.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import { realTimers, type Timers } from '../../../shared-io/timers.js';
import type { AttestationEvidence, EvidenceProvider } from './attestation-evidence.js';
import type { AnswerTiming } from './clock-offset.js';
import { validateSignedSvid } from './signed-svid.js';
import { type LocalValidity, type Readiness, type RenewalState, identityReadiness, localValidity, nextCheckInMs, renewalDecision, retryAtMs } from './renewal-schedule.js';

/** What SignSvid returns, straight off the wire; validated whole before anything uses it. */
export interface SignedSvidRaw {
  /** DER, leaf first. */
  readonly chainDer: readonly Uint8Array[];
  /** Trust bundles returned with it; the one of the SVID's trust domain is required. */
  readonly bundles: readonly { readonly trustDomain: string; readonly authoritiesDer: readonly Uint8Array[] }[];
  /** When it was asked for and came (this host's clock), with the control plane's clock; absent: the source times it. */
  readonly timing?: AnswerTiming;
}

/** A validated SVID with its key, as installed. */
export interface IssuedSvid {
  readonly id: SpiffeId;
  readonly chain: readonly X509Certificate[];
  readonly key: KeyPair;
  /** The control plane's bundle for the SVID's trust domain, as returned with the SVID. */
  readonly bundle: TrustBundle;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  /** Wall-clock time the SignSvid answer arrived (this host's clock). */
  readonly issuedAtMs: number;
  /** This host's clock minus the control plane's, estimated from the answer (clock-offset.ts); absent or 0: they agree. */
  readonly clockOffsetMs?: number;
  readonly serial: string;
}

/** The gRPC side (control-plane-client.ts) as the source sees it. */
export interface SvidSigner {
  /** First contact or re-attestation: server-authenticated TLS, evidence in the request. */
  attest(csrDer: Buffer, evidence: AttestationEvidence): Promise<SignedSvidRaw>;
  /** Renewal over mTLS, authenticated by the current, still valid SVID. */
  renew(csrDer: Buffer, current: IssuedSvid): Promise<SignedSvidRaw>;
}

export type RotationResult = 'success' | 'failure' | 'refused';

/** How an SVID came: attested, re-attested after expiry, renewed, or restored from the state dir at start. */
export type SvidKind = 'attest' | 'reattest' | 'renew' | 'restore';

export interface SvidSourceEvent {
  readonly kind: SvidKind;
  readonly result: RotationResult;
  readonly serial?: string;
  readonly notAfterMs?: number;
  readonly error?: string;
  /** The failure's stable code, when it has one. */
  readonly code?: string;
  /** The control plane refused to renew the restored SVID: it was dropped, and the proxy attests next. */
  readonly fallback?: true;
}

export interface ControlPlaneSvidSourceOptions {
  readonly signer: SvidSigner;
  readonly evidence: EvidenceProvider;
  /** Installs a validated SVID (validate-then-swap in the identity store); throwing refuses it. */
  readonly install: (svid: IssuedSvid) => void | Promise<void>;
  /** When set, an SVID of another trust domain is refused. */
  readonly trustDomain?: TrustDomain;
  readonly clock: Clock;
  /** The looks are scheduled here (default: the real timers, unref'd). */
  readonly timers?: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
  /** The longest the wall clock goes unread (default 10 s): a clock step or a suspended host is acted on within it. */
  readonly tickMs?: number;
  readonly random?: () => number;
  readonly onEvent?: (e: SvidSourceEvent) => void;
  /** Each valid answer's estimated clock offset (ms, local minus control plane), installed or not. */
  readonly onClockOffset?: (offsetMs: number) => void;
}

/** A signed answer refused as not valid yet by this host's clock, with the kind of attempt that got it. */
interface Held {
  readonly svid: IssuedSvid;
  readonly kind: 'attest' | 'reattest' | 'renew' | 'restore';
  /** When every certificate of its chain is valid by this host's clock (what the identity store checks). */
  readonly validFromMs: number;
  /** When it expires for peers with the control plane's time, on this host's clock: then it is not worth installing. */
  readonly expiresAtMs: number;
}

/** Default `tickMs`: how long the wall clock may go unread while nothing is due. */
const MAX_CHECK_MS = 10_000;

export class ControlPlaneSvidSource {
  readonly #o: ControlPlaneSvidSourceOptions;
  readonly #random: () => number;
  #current: IssuedSvid | undefined;
  /** The current SVID's validity and renewal point on this host's clock. */
  #local: LocalValidity | undefined;
  #failures = 0;
  #retryAt: number | undefined;
  #lastError: string | undefined;
  /** The last renewal was refused because the current serial is banned: attest again at once. */
  #serialBanned = false;
  /** The control plane refused the current SVID as revoked (serial or ID banned): not ready until another is installed. */
  #revokedBy: OwnBan | undefined;
  /** What the ban's refusal said: /ready names it, not a re-attestation's failure after it (audit 59b F5). */
  #banError: string | undefined;
  /** The current SVID was restored from the state dir and the control plane has not renewed it yet. */
  #restored = false;
  /**
   * The kept SVID, expired by this host's clock at the restart: the first attempt renews with it instead of
   * attesting, and the control plane's clock decides (a host ahead of it: audit 53b F2). Gone after its answer.
   */
  #expiredKept: IssuedSvid | undefined;
  /** A signed answer refused as not valid yet by this host's clock, with the kind of attempt that got it. */
  #held: Held | undefined;
  #busy: Promise<void> | undefined;
  #started = false;
  #timer: unknown;
  #firstListeners: (() => void)[] = [];

  constructor(opts: ControlPlaneSvidSourceOptions) {
    this.#o = opts;
    this.#random = opts.random ?? Math.random;
  }

  /** Makes the first attempt at once; every look then schedules the next one. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    void this.tick();
  }

  stop(): void {
    this.#started = false;
    if (this.#timer === undefined) return;
    (this.#o.timers ?? realTimers).clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Starts from an SVID kept across a restart instead of attesting (before start()): installed as any answer is,
   * renewed at its renewal point (at once if that is past). Throws, keeping nothing, if the install refuses it.
   */
  async restore(svid: IssuedSvid): Promise<void> {
    await this.#o.install(svid);
    this.#installed('restore', svid);
    this.#restored = true;
  }

  /**
   * The kept SVID is not valid yet by this host's clock (one behind the control plane's by more than the backdate,
   * restarted soon after a renewal): held as a fresh answer would be, and restored once valid here; nothing is
   * asked of the control plane meanwhile (a spent join token would be refused).
   */
  restoreWhenValid(svid: IssuedSvid): void {
    const validFromMs = Math.max(...svid.chain.map((c) => c.validFromDate.getTime()));
    this.#held = { svid, kind: 'restore', validFromMs, expiresAtMs: svid.notAfterMs };
    this.#lastError = `the persisted SVID is held until ${new Date(validFromMs).toISOString()} (not valid yet by this host's clock)`;
  }

  /** The kept SVID has expired by this host's clock: the control plane is asked to renew it before any attestation. */
  renewExpiredFirst(svid: IssuedSvid): void {
    this.#expiredKept = svid;
  }

  /**
   * The control plane refused a stream opened with the current SVID: renew it now rather than at its renewal point,
   * so that the renewal's refusal says so at once — a restored SVID (banned, or no longer verifying there) is
   * dropped, a revoked one makes the proxy not ready. For an SVID issued in this run only a revocation does: any
   * other refusal of its stream is not news about the SVID.
   */
  renewNowRefused(refusal: unknown): void {
    const now = this.#o.clock.nowMs();
    if (!(this.#restored || revokedByControlPlane(refusal)) || !this.#current || !this.#local || this.#local.renewAtMs <= now) return;
    this.#local = { ...this.#local, renewAtMs: now };
    void this.tick();
  }

  /** Resolves once the first SVID is installed. */
  firstSvid(): Promise<void> {
    if (this.#current) return Promise.resolve();
    return new Promise((ok) => this.#firstListeners.push(ok));
  }

  get current(): IssuedSvid | undefined {
    return this.#current;
  }

  /** The planned renewal instant of the current SVID (this host's wall clock, ms). */
  get nextRenewalMs(): number | undefined {
    if (!this.#local) return undefined;
    return Math.max(this.#local.renewAtMs, this.#retryAt ?? 0);
  }

  /** Which ban the control plane refused the current SVID for, until another SVID is installed (the JWT side follows it). */
  get revokedBy(): OwnBan | undefined {
    return this.#revokedBy;
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  get consecutiveFailures(): number {
    return this.#failures;
  }

  /** What the schedule decides on: the SVID's validity as moved onto this host's clock, not as printed in it. */
  state(): RenewalState {
    const base = { failures: this.#failures, canReattest: this.#o.evidence.canReattest(), serialBanned: this.#serialBanned, revoked: this.#revokedBy !== undefined, ...(this.#retryAt !== undefined ? { retryAtMs: this.#retryAt } : {}) };
    return this.#local ? { ...base, svid: this.#local } : base;
  }

  /**
   * Identity readiness now: not ready before the first SVID, after expiry, or in the last 10 % while failing. Expiry
   * as peers with the control plane's time see it (they judge our SVID by their clocks), not by this host's clock.
   */
  readiness(): Readiness {
    return identityReadiness(this.#o.clock.nowMs(), this.state(), this.#revokedBy !== undefined ? this.#banError : this.#lastError);
  }

  /** One look: read the wall clock, decide, act, schedule the next look. Concurrent looks join the attempt in flight. */
  tick(): Promise<void> {
    if (this.#busy) return this.#busy;
    const now = this.#o.clock.nowMs();
    const held = this.#held;
    if (held && now >= held.expiresAtMs) this.#held = undefined;
    else if (held && now < held.validFromMs) {
      this.#schedule(now, held.validFromMs);
      return Promise.resolve();
    } else if (held) return this.#run(() => this.#installHeld(held));
    const decision = renewalDecision(now, this.state());
    switch (decision.kind) {
      case 'wait':
        this.#schedule(now, decision.untilMs);
        return Promise.resolve();
      case 'expired':
        this.#lastError = decision.reason;
        this.#schedule(now, undefined);
        return Promise.resolve();
      default: {
        const kind = decision.kind;
        return this.#run(() => this.#attempt(kind));
      }
    }
  }

  /** Runs one attempt as the look in flight, then schedules the next look. */
  #run(attempt: () => Promise<void>): Promise<void> {
    this.#busy = attempt().finally(() => {
      this.#busy = undefined;
      if (this.#current) for (const l of this.#firstListeners.splice(0)) l();
      // Normally a wait now (until the renewal point, the retry or a held answer's start); anything else is due at
      // once and looked at after nextCheckInMs's floor, so an SVID due again on arrival cannot make a tight loop.
      const at = this.#o.clock.nowMs();
      const held = this.#held;
      const next = renewalDecision(at, this.state());
      this.#schedule(at, held ? held.validFromMs : next.kind === 'wait' ? next.untilMs : at);
    });
    return this.#busy;
  }

  /** A held answer's time has come: installed as when it arrived; refused for good if it still fails. */
  async #installHeld(held: Held): Promise<void> {
    this.#held = undefined;
    try {
      await this.#o.install(held.svid);
      this.#installed(held.kind, held.svid);
      if (held.kind === 'restore') this.#restored = true;
    } catch (e) {
      this.#failed(held.kind, 'refused', e);
    }
  }

  /** Arms the one timer for the next look (replacing any earlier one); nothing once stopped. */
  #schedule(nowMs: number, untilMs: number | undefined): void {
    if (!this.#started) return;
    const timers = this.#o.timers ?? realTimers;
    if (this.#timer !== undefined) timers.clearTimeout(this.#timer);
    this.#timer = timers.setTimeout(() => {
      this.#timer = undefined;
      void this.tick();
    }, nextCheckInMs(nowMs, untilMs, this.#o.tickMs ?? MAX_CHECK_MS));
  }

  async #attempt(kind: 'attest' | 'reattest' | 'renew'): Promise<void> {
    const restored = kind === 'renew' && this.#restored;
    // No SVID yet, and the kept one expired by this clock: a renewal with it comes first (renewExpiredFirst).
    const kept = kind === 'attest' ? this.#expiredKept : undefined;
    const reported = kept ? 'renew' : kind;
    const { clock, signer } = this.#o;
    let stage: 'sign' | 'validate' | 'install' = 'sign';
    try {
      const current = this.#current;
      const renewWith = kind === 'renew' ? current : kept;
      // A fresh key per SVID: the old key stays only with connections already made with it.
      const key = generateKeyPair('ec-p256');
      const csr = await createCsr(key, renewWith ? { uriSans: [renewWith.id.toString()] } : {});
      const evidence = renewWith ? undefined : await this.#o.evidence.read();
      const sentAtMs = clock.nowMs();
      const raw = renewWith ? await signer.renew(csr, renewWith) : await signer.attest(csr, evidence!);
      stage = 'validate';
      const timing = raw.timing ?? { sentAtMs, receivedAtMs: clock.nowMs() };
      const svid = validateSignedSvid(raw, key, timing, { trustDomain: this.#o.trustDomain, sameIdAs: renewWith?.id });
      this.#expiredKept = undefined;
      this.#o.onClockOffset?.(svid.clockOffsetMs ?? 0);
      stage = 'install';
      try {
        await this.#o.install(svid);
      } catch (e) {
        if (!renewWith) this.#o.evidence.consumed(); // the control plane spent it, whatever we make of the answer
        const validFromMs = Math.max(...svid.chain.map((c) => c.validFromDate.getTime()));
        const expiresAtMs = svid.notAfterMs + (svid.clockOffsetMs ?? 0);
        if (validFromMs > clock.nowMs() && validFromMs < expiresAtMs) this.#held = { svid, kind: reported, validFromMs, expiresAtMs };
        throw e;
      }
      if (!renewWith) this.#o.evidence.consumed();
      this.#installed(reported, svid);
    } catch (e) {
      if (restored && stage === 'sign' && refusedByControlPlane(e)) return this.#dropRestored(e);
      // Refused by the control plane too (expired by its clock as well, banned…): attest at once, as without it.
      if (kept && stage === 'sign' && refusedByControlPlane(e)) return this.#dropExpiredKept(e);
      if (kind === 'renew' && isTesseraError(e) && e.details['controlPlaneCode'] === 'TESSERA_ERR_REVOCATION_SERIAL_BANNED') this.#serialBanned = true;
      if (this.#current && revokedByControlPlane(e)) {
        this.#revokedBy = banOf(e);
        this.#banError = describeError(e);
      }
      this.#failed(reported, stage === 'sign' ? 'failure' : 'refused', e);
    }
  }

  /**
   * The control plane refused to renew the restored SVID (its serial or ID banned, expired by its clock, of an
   * authority it no longer trusts): it is not this proxy's identity any more. Dropped, so the proxy is not ready and
   * the next look attests with the configured evidence, as at a start without a state dir.
   */
  #dropRestored(e: unknown): void {
    this.#restored = false;
    this.#current = undefined;
    this.#local = undefined;
    this.#failures = 0;
    this.#retryAt = undefined;
    this.#serialBanned = false;
    this.#revokedBy = undefined;
    this.#fellBack(e);
  }

  /** The kept SVID expired here was refused by the control plane too: the next look attests. */
  #dropExpiredKept(e: unknown): void {
    this.#expiredKept = undefined;
    this.#fellBack(e);
  }

  /**
   * A kept SVID the control plane refused to renew is given up: said once, as a failed renewal that falls back. A
   * refusal by the control plane is a `failure` (as for a running proxy); `refused` is an answer that did not
   * validate here (before 2026-12-07 this one was `refused`, and an alert on it fired at a restart after an outage:
   * audit 55b F5).
   */
  #fellBack(e: unknown): void {
    this.#lastError = describeError(e);
    this.#o.onEvent?.({ kind: 'renew', result: 'failure', error: this.#lastError, fallback: true, ...(isTesseraError(e) ? { code: e.code } : {}) });
  }

  #installed(kind: SvidKind, svid: IssuedSvid): void {
    this.#current = svid;
    this.#local = localValidity(svid, this.#random);
    this.#failures = 0;
    this.#retryAt = undefined;
    this.#lastError = undefined;
    this.#serialBanned = false;
    this.#revokedBy = undefined;
    this.#restored = false;
    this.#o.onEvent?.({ kind, result: 'success', serial: svid.serial, notAfterMs: svid.notAfterMs });
  }

  #failed(kind: 'attest' | 'reattest' | 'renew' | 'restore', result: 'failure' | 'refused', e: unknown): void {
    const now = this.#o.clock.nowMs();
    this.#failures++;
    this.#retryAt = retryAtMs(now, this.#failures, this.#local?.notAfterMs, undefined, this.#random);
    const held = this.#held;
    this.#lastError = describeError(e) + (held ? `; held, installed at ${new Date(held.validFromMs).toISOString()} by this host's clock (${behindBy(held.svid.clockOffsetMs)})` : '');
    this.#o.onEvent?.({ kind, result, error: this.#lastError, ...(isTesseraError(e) ? { code: e.code } : {}) });
  }
}

/** What a held answer says of this host's clock: the answer's own estimate when it has one (clock-offset.ts). */
function behindBy(offsetMs: number | undefined): string {
  return offsetMs !== undefined && offsetMs <= -1_000 ? `about ${Math.round(-offsetMs / 1_000)} s behind the control plane's` : "behind the control plane's?";
}

/** The ban a control plane's refusal names: of the SVID's serial or of its ID (`tessera revoke`). */
export type OwnBan = 'TESSERA_ERR_REVOCATION_SERIAL_BANNED' | 'TESSERA_ERR_REVOCATION_ID_BANNED';

export function banOf(e: unknown): OwnBan | undefined {
  if (!isTesseraError(e)) return undefined;
  const code = e.details['controlPlaneCode'];
  return code === 'TESSERA_ERR_REVOCATION_SERIAL_BANNED' || code === 'TESSERA_ERR_REVOCATION_ID_BANNED' ? code : undefined;
}

/** The control plane's refusal names a ban of the SVID's serial or ID (`tessera revoke`). */
export function revokedByControlPlane(e: unknown): boolean {
  return banOf(e) !== undefined;
}

/**
 * Whether a failed call is the control plane's refusal of the SVID it was authenticated with (UNAUTHENTICATED or
 * PERMISSION_DENIED, with the control plane's own code): not a replica that could not be reached or a rate limit.
 */
export function refusedByControlPlane(e: unknown): boolean {
  if (!isTesseraError(e) || e.details['controlPlaneCode'] === undefined) return false;
  const status = e.details['grpcCode'];
  return status === GRPC_STATUS.UNAUTHENTICATED || status === GRPC_STATUS.PERMISSION_DENIED;
}

function describeError(e: unknown): string {
  if (e instanceof TesseraError) return `${e.code}: ${e.message}`;
  const g = e as { code?: unknown; details?: unknown; message?: unknown };
  if (typeof g.code === 'number' && typeof g.details === 'string') return `grpc ${g.code}: ${g.details}`;
  return String(g.message ?? e);
}
