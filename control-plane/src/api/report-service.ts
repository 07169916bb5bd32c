// tessera.config.v1.Config/Report: a proxy's report for the fleet view (the SVID each listener serves and when that
// was checked; denials per policy). The reporting SPIFFE ID is the caller's client SVID's (mTLS, bans applied),
// never a field of the message. A malformed or oversized report is refused whole with a code and counted; an
// accepted one is stamped with this replica's clock and name and replaces that proxy instance's previous report.
// The instance is the caller's choice, so the rate limit is per SPIFFE ID and an ID keeps at most
// MAX_INSTANCES_PER_ID reports: a new instance past it replaces that ID's oldest.
import type * as grpc from '@grpc/grpc-js';
import { Counter, type Registry } from 'prom-client';
import type { Clock } from '../../../common/clock.js';
import {
  type DenialCountMsg,
  type DenialOutcome,
  FOLDED_POLICIES,
  NO_POLICY,
  type ProxyReportMsg,
  REPORT_LIMITS,
  type ReportAckMsg,
  type ServedSvidMsg,
} from '../../../common/contract/config-v1.js';
import type { Int64 } from '../../../common/contract/field-spec.js';
import { type ErrorCode, TesseraError, describeError, isTesseraError } from '../../../common/errors.js';
import { canonicalSerial } from '../../../common/pki/serial.js';
import { checkPolicyName } from '../../../common/policy/policy-schema.js';
import { UNAUTHENTICATED } from '../../../common/policy/policy-types.js';
import { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import type { SvidAttestor } from '../attestation/svid-attestor.js';
import { type RateLimit, RateLimiter } from '../issuance/rate-limiter.js';
import type { ControlPlaneLogger } from '../logger.js';
import type { ProxyReport, ReportStore } from '../store/store-contract.js';
import { toGrpcError } from './grpc-status.js';
import { svidRefusal } from './svid-refusal.js';
import { RejectedMessage } from './guarded-service.js';

/** Reports one SPIFFE ID keeps (its replicas, each a proxy instance); a new instance past it replaces the oldest. */
export const MAX_INSTANCES_PER_ID = 64;
/**
 * Per SPIFFE ID, all its instances together: a proxy reports every 30 s and after each rotation, so this covers
 * MAX_INSTANCES_PER_ID replicas at 3 a minute each (a per-instance key gave each made-up instance a fresh bucket).
 */
export const DEFAULT_REPORT_RATE_LIMIT: RateLimit = Object.freeze({ burst: MAX_INSTANCES_PER_ID, perMinute: 3 * MAX_INSTANCES_PER_ID });
/** Buckets kept before full ones are swept. */
const SWEEP_ABOVE = 1024;
/** 9999-12-31T23:59:59.999Z: later times are not times. */
const MAX_TIME_MS = 253_402_300_799_999;
const LISTENER_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const INSTANCE = /^[\x21-\x7e]+$/;
const DECIMAL = /^(0|[1-9][0-9]{0,15})$/;

export interface ReportServiceDeps {
  readonly svids: SvidAttestor;
  readonly peerChain: (call: { getPeer(): string }) => Buffer[];
  /** Operator bans: throws TESSERA_ERR_REVOCATION_* for a banned ID or SVID serial. */
  readonly admit: (spiffeId: string, serial: string) => void;
  readonly reports: Pick<ReportStore, 'put'>;
  readonly clock: Clock;
  /** Names this replica in stored reports: a configured name, or its gRPC address (read per call: known after start). */
  readonly replica: () => string;
  readonly rateLimit?: RateLimit;
  /** Reports kept per SPIFFE ID (default MAX_INSTANCES_PER_ID). */
  readonly maxInstancesPerId?: number;
  readonly log?: ControlPlaneLogger;
  readonly onStored?: () => void;
  /** A report refused (bad caller, malformed, over bounds, rate-limited) or not stored, by code. */
  readonly onRefused?: (code: ErrorCode) => void;
}

const invalid = (field: string, what: string) => new TesseraError('TESSERA_ERR_REPORT_INVALID', `${field}: ${what}`, { field });

/** A non-negative integer that fits a JS number (int64 arrives as decimal text). */
function count(v: Int64 | undefined, field: string): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && DECIMAL.test(v) ? Number(v) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 0) throw invalid(field, 'not a non-negative integer');
  return n;
}

function time(v: Int64 | undefined, field: string): number {
  const n = count(v, field);
  if (n > MAX_TIME_MS) throw invalid(field, 'not a time');
  return n;
}

function served(list: readonly ServedSvidMsg[]): ProxyReport['served'] {
  if (list.length > REPORT_LIMITS.served) throw invalid('served', `more than ${REPORT_LIMITS.served} listeners`);
  const seen = new Set<string>();
  return list.map((s, i) => {
    const listener = String(s?.listener ?? '');
    if (!LISTENER_NAME.test(listener)) throw invalid(`served[${i}].listener`, 'not a listener name ([a-z0-9][a-z0-9-]{0,62})');
    if (seen.has(listener)) throw invalid(`served[${i}].listener`, `"${listener}" is listed twice`);
    seen.add(listener);
    const serial = String(s.serial ?? '');
    if (serial !== '' && canonicalSerial(serial) !== serial) throw invalid(`served[${i}].serial`, 'not a serial (lower-case hex, whole bytes, at most 20)');
    return { listener, serial, notAfterMs: time(s.not_after_unix_ms, `served[${i}].not_after_unix_ms`) };
  });
}

function caller(text: string, field: string): string {
  if (text === UNAUTHENTICATED) return text;
  if (Buffer.byteLength(text) > REPORT_LIMITS.callerBytes || !SpiffeId.tryParse(text).ok) throw invalid(field, 'neither a SPIFFE ID nor "unauthenticated"');
  return text;
}

function denials(list: readonly DenialCountMsg[]): ProxyReport['denials'] {
  if (list.length > REPORT_LIMITS.denials) throw invalid('denials', `more than ${REPORT_LIMITS.denials} rows`);
  const seen = new Set<string>();
  return list.map((d, i) => {
    const policy = String(d?.policy ?? '');
    if (policy !== NO_POLICY && policy !== FOLDED_POLICIES && checkPolicyName(policy) !== null) throw invalid(`denials[${i}].policy`, 'not a policy name, "" or "*"');
    const outcome = String(d.outcome ?? '');
    if (outcome !== 'deny' && outcome !== 'audit') throw invalid(`denials[${i}].outcome`, 'neither "deny" nor "audit"');
    const key = `${outcome} ${policy}`;
    if (seen.has(key)) throw invalid(`denials[${i}]`, `policy "${policy}" with outcome ${outcome} is listed twice`);
    seen.add(key);
    return {
      policy,
      outcome: outcome as DenialOutcome,
      count: count(d.count, `denials[${i}].count`),
      lastAtMs: time(d.last_at_unix_ms, `denials[${i}].last_at_unix_ms`),
      lastCaller: caller(String(d.last_caller ?? ''), `denials[${i}].last_caller`),
    };
  });
}

function instanceOf(msg: ProxyReportMsg): string {
  const instance = String(msg.instance ?? '');
  if (instance.length === 0 || instance.length > REPORT_LIMITS.instanceChars || !INSTANCE.test(instance)) {
    throw invalid('instance', `not 1 to ${REPORT_LIMITS.instanceChars} printable ASCII characters without spaces`);
  }
  return instance;
}

/** The stored form of `msg` from `spiffeId` (proved by its SVID), or TESSERA_ERR_REPORT_INVALID naming the field. */
export function validateReport(msg: ProxyReportMsg, spiffeId: string, receivedAtMs: number, replica: string): ProxyReport {
  return {
    spiffeId,
    instance: instanceOf(msg),
    served: served(msg.served ?? []),
    checkedAtMs: time(msg.checked_at_unix_ms, 'checked_at_unix_ms'),
    receivedAtMs,
    replica,
    denials: denials(msg.denials ?? []),
  };
}

/** The Report method of the Config service; main.ts merges it with the Watch handler of the config hub. */
export function reportHandlers(d: ReportServiceDeps): grpc.UntypedServiceImplementation {
  const limiter = new RateLimiter(d.rateLimit ?? DEFAULT_REPORT_RATE_LIMIT, d.clock);
  const refuse = (e: unknown, callback: grpc.sendUnaryData<ReportAckMsg>) => {
    const err = isTesseraError(e) ? e : new TesseraError('TESSERA_ERR_REPORT_NOT_STORED');
    d.onRefused?.(err.code);
    callback(toGrpcError(err));
  };
  return {
    Report: (call: grpc.ServerUnaryCall<ProxyReportMsg | RejectedMessage, ReportAckMsg>, callback: grpc.sendUnaryData<ReportAckMsg>) => {
      let spiffeId: string;
      try {
        const peer = d.svids.attest(d.peerChain(call));
        spiffeId = peer.spiffeId.toString();
        d.admit(spiffeId, peer.serial);
      } catch (e) {
        // As for Config/Watch: the recorded code (a ban, no certificate, an SVID that does not verify), no detail.
        refuse(svidRefusal(e), callback);
        return;
      }
      const req = call.request;
      if (req instanceof RejectedMessage) {
        // Undecodable is a malformed report; oversized keeps its own code.
        refuse(new TesseraError(req.code === 'TESSERA_ERR_ISSUANCE_BAD_REQUEST' ? 'TESSERA_ERR_REPORT_INVALID' : req.code), callback);
        return;
      }
      const now = d.clock.nowMs();
      const replica = d.replica();
      let report: ProxyReport;
      try {
        // The bucket is taken before the rest is checked: malformed reports are held to the same rate.
        if (limiter.size > SWEEP_ABOVE) limiter.sweep();
        if (!limiter.take(spiffeId)) throw new TesseraError('TESSERA_ERR_REPORT_RATE_LIMITED');
        report = validateReport(req, spiffeId, now, replica);
      } catch (e) {
        // Only an older or broken proxy sends a malformed report: say which field, here only (never to the peer).
        if (isTesseraError(e, 'TESSERA_ERR_REPORT_INVALID')) d.log?.warn({ spiffeId, err: describeError(e) }, 'a proxy report was refused');
        refuse(e, callback);
        return;
      }
      d.reports.put(report, d.maxInstancesPerId ?? MAX_INSTANCES_PER_ID).then(
        () => {
          d.onStored?.();
          callback(null, { received_at_unix_ms: String(now), replica });
        },
        (e: unknown) => {
          d.log?.warn({ spiffeId, instance: report.instance, err: describeError(e) }, 'a proxy report could not be stored');
          // A store's own coded failure (e.g. the database is down) is told; anything else is NOT_STORED.
          refuse(isTesseraError(e) ? e : new TesseraError('TESSERA_ERR_REPORT_NOT_STORED'), callback);
        },
      );
    },
  };
}

/** tessera_cp_proxy_reports_total{result} and tessera_cp_proxy_report_refusals_total{code}, as the handler's callbacks. */
export function reportMetrics(registry: Registry): Pick<ReportServiceDeps, 'onStored' | 'onRefused'> {
  const registers = [registry];
  const reports = new Counter({ name: 'tessera_cp_proxy_reports_total', help: 'Proxy reports (Config/Report) by result (stored|refused)', labelNames: ['result'], registers });
  const refusals = new Counter({ name: 'tessera_cp_proxy_report_refusals_total', help: 'Proxy reports refused or not stored, by stable error code', labelNames: ['code'], registers });
  reports.inc({ result: 'stored' }, 0);
  reports.inc({ result: 'refused' }, 0);
  return {
    onStored: () => reports.inc({ result: 'stored' }),
    onRefused: (code) => {
      reports.inc({ result: 'refused' });
      refusals.inc({ code });
    },
  };
}
