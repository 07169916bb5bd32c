// The clock offset one SignSvid answer shows (local minus control plane) and where the schedule then places the SVID
// on this host's clock: 0 while the clocks may agree, the least skew the answer proves otherwise, a date header that
// contradicts NotBefore ignored, and a renewal point never sooner than a tenth of the lifetime after arrival.
import { describe, expect, test } from 'vitest';
import { clockOffsetMs, parseHttpDate } from '../../../../proxy/src/identity/clock-offset.js';
import { localValidity, renewAtMs } from '../../../../proxy/src/identity/renewal-schedule.js';

const CP = Date.UTC(2030, 0, 1, 12); // the control plane's clock when it answered (a whole second)
const NB = CP - 60_000; // backdated 60 s
const NA = CP + 3_600_000; // ttl 1 h
const at = (localMs: number, dateMs?: number) => ({ sentAtMs: localMs - 20, receivedAtMs: localMs + 20, controlPlaneDateMs: dateMs });

describe('clockOffsetMs', () => {
  test('clocks that agree (within the date header\'s second and the round trip): 0', () => {
    expect(clockOffsetMs(at(CP, CP), NB, NA)).toBe(0);
    expect(clockOffsetMs(at(CP + 900, CP), NB, NA)).toBe(0);
    expect(clockOffsetMs(at(CP - 15, CP), NB, NA)).toBe(0);
  });
  test('a host ahead or behind: the least skew the answer proves, short of the truth by at most a second and the round trip', () => {
    // Ahead by an hour (a timezone mistake): the local clock read CP + 1 h while the control plane's read [CP, CP + 1 s).
    expect(clockOffsetMs(at(CP + 3_600_000, CP), NB, NA)).toBe(3_600_000 - 20 - 1_000);
    expect(clockOffsetMs(at(CP - 110_000, CP), NB, NA)).toBe(-110_000 + 20);
    for (const skew of [-1_800_000, -5_000, 2_500, 111_000, 3_500_000]) {
      const o = clockOffsetMs(at(CP + 400 + skew, CP), NB, NA);
      expect(Math.abs(o)).toBeLessThanOrEqual(Math.abs(skew));
      expect(Math.abs(skew - o)).toBeLessThanOrEqual(1_000 + 40);
    }
  });
  test('without a date header: NotBefore bounds the control plane\'s clock, between itself and a third of the lifetime later', () => {
    expect(clockOffsetMs(at(CP), NB, NA)).toBe(0);
    // Ahead by 30 min: the answer cannot be older than a third of the lifetime (the control plane's backdate limit).
    expect(clockOffsetMs(at(CP + 1_800_000), NB, NA)).toBe(CP + 1_800_000 - 20 - (NB + (NA - NB) / 3));
    // Behind by 10 min: NotBefore was at most a second after the control plane's reading.
    expect(clockOffsetMs(at(CP - 600_000), NB, NA)).toBe(CP - 600_000 + 20 - (NB - 1_000));
  });
  test('a date header that contradicts NotBefore (not the signer\'s clock) is not believed', () => {
    expect(clockOffsetMs(at(CP, NB - 3_600_000), NB, NA)).toBe(0);
  });
});

describe('localValidity', () => {
  test('moves the SVID\'s validity by the offset: the renewal point is a synchronized host\'s, on this clock', () => {
    const mid = () => 0.5;
    const synced = localValidity({ notBeforeMs: NB, notAfterMs: NA, issuedAtMs: CP, clockOffsetMs: 0 }, mid);
    expect(synced).toEqual({ notBeforeMs: NB, notAfterMs: NA, renewAtMs: renewAtMs(NB, NA, mid) });
    const ahead = localValidity({ notBeforeMs: NB, notAfterMs: NA, issuedAtMs: CP + 3_600_000, clockOffsetMs: 3_600_000 }, mid);
    expect(ahead).toEqual({ notBeforeMs: NB + 3_600_000, notAfterMs: NA + 3_600_000, renewAtMs: synced.renewAtMs + 3_600_000 });
  });
  test('never sooner than a tenth of the lifetime after the SVID arrived, whatever the estimate', () => {
    // An estimate an hour short (the clock is 2 h ahead, the answer proved only 1 h): renewal due on arrival, held back.
    const v = localValidity({ notBeforeMs: NB, notAfterMs: NA, issuedAtMs: CP + 7_200_000, clockOffsetMs: 3_600_000 }, () => 0.5);
    expect(v.renewAtMs).toBe(CP + 7_200_000 + (NA - NB) / 10);
  });
});

test('parseHttpDate: an HTTP date, or undefined', () => {
  expect(parseHttpDate('Wed, 01 Jan 2030 12:00:00 GMT')).toBe(CP);
  expect(parseHttpDate('yesterday-ish')).toBeUndefined();
  expect(parseHttpDate(undefined)).toBeUndefined();
  expect(parseHttpDate(Buffer.from('x'))).toBeUndefined();
});
