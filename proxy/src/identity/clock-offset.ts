// How far this host's wall clock is from the control plane's, as one SignSvid answer shows it: the offset every
// SVID time (the control plane's NotBefore/NotAfter) is moved by before the renewal schedule compares it with the
// local clock (renewal-schedule.ts), and what tessera_control_plane_clock_offset_seconds reports. Pure: the caller
// gives the times.

/** When an answer was asked for and came, by this host's clock, and the control plane's clock in it. */
export interface AnswerTiming {
  /** Local time just before the call went out. */
  readonly sentAtMs: number;
  /** Local time the answer arrived. */
  readonly receivedAtMs: number;
  /**
   * The control plane's clock as it answered: the HTTP `date` response header (Node's HTTP/2 server sets it on
   * every gRPC answer), whole seconds, rounded down. Absent: no such header (an older or foreign server).
   */
  readonly controlPlaneDateMs?: number | undefined;
}

/**
 * NotBefore is a reading of the control plane's clock too: `now - svid.backdate` rounded up to the second, so never
 * more than a second after the answer; and the control plane refuses a backdate over half the ttl, so it is at most
 * a third of the lifetime before it (unless the signing intermediate's end cut NotAfter short).
 */
const MAX_BACKDATE_SHARE = 1 / 3;

/** An estimated offset this large or larger is told in a warn log (the estimate is good to about a second). */
export const CLOCK_OFFSET_WARN_MS = 5_000;

/**
 * Estimated offset of the local clock from the control plane's (local minus control plane; positive: this host is
 * ahead). The answer bounds it: the control plane read its clock between `sentAtMs` and `receivedAtMs` local time;
 * the date header puts that reading in [date, date + 1 s) and NotBefore after NotBefore - 1 s; without a date
 * header, NotBefore alone puts it in [NotBefore - 1 s, NotBefore + a third of the lifetime]. The estimate is the
 * offset within those bounds nearest to zero: 0 when the clocks may agree, else the least skew the answer proves.
 * Its error is towards zero and, with a date header, at most the round trip plus a second: a host ahead renews that
 * much early, one behind that much late. Without one it can reach the backdate (behind) or a third of the lifetime
 * (ahead; renewal-schedule.ts still keeps that from looping). A date that contradicts NotBefore is ignored, so no
 * header can place the renewal point later than the arrival time plus the usual share of the lifetime.
 */
export function clockOffsetMs(t: AnswerTiming, notBeforeMs: number, notAfterMs: number): number {
  const lifetime = Math.max(0, notAfterMs - notBeforeMs);
  let low = t.sentAtMs - (notBeforeMs + lifetime * MAX_BACKDATE_SHARE);
  let high = t.receivedAtMs - (notBeforeMs - 1_000);
  const date = t.controlPlaneDateMs;
  if (date !== undefined && Number.isFinite(date)) {
    const dateLow = t.sentAtMs - (date + 1_000);
    const dateHigh = Math.min(high, t.receivedAtMs - date);
    if (dateLow <= dateHigh) [low, high] = [dateLow, dateHigh];
  }
  if (low > 0) return Math.round(low);
  if (high < 0) return Math.round(high);
  return 0;
}

/** The `date` header of an answer as epoch milliseconds; undefined when absent or unparsable. */
export function parseHttpDate(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}
