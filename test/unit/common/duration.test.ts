import { describe, expect, test } from 'vitest';
import { backoffDelay } from '../../../common/backoff.js';
import { formatDuration, parseDuration } from '../../../common/duration.js';

describe('parseDuration', () => {
  test.each([
    ['500ms', 500], ['60s', 60_000], ['15m', 900_000], ['1h', 3_600_000], ['1h30m', 5_400_000], ['2d', 172_800_000], ['1.5s', 1500],
  ])('%s = %d ms', (t, ms) => expect(parseDuration(t)).toBe(ms));
  test.each(['', '10', 'h', '1x', '-1s', '1 h', '1h-'])('rejects %j', (t) =>
    expect(() => parseDuration(t)).toThrowError(expect.objectContaining({ code: 'TESSERA_ERR_CONFIG_BAD_DURATION' })));
  test('formatDuration', () => {
    expect(formatDuration(5_400_000)).toBe('1h30m');
    expect(formatDuration(250)).toBe('250ms');
    expect(formatDuration(-61_000)).toBe('-1m1s');
  });
});

describe('backoffDelay', () => {
  const opts = { initialMs: 100, maxMs: 5_000, jitter: 0.2 };
  test('grows exponentially and is capped', () => {
    expect(backoffDelay(0, opts, () => 0.5)).toBe(100);
    expect(backoffDelay(3, opts, () => 0.5)).toBe(800);
    expect(backoffDelay(20, opts, () => 0.5)).toBe(5_000);
  });
  test('jitter stays within ±20 % and under the cap', () => {
    expect(backoffDelay(2, opts, () => 0)).toBe(320);
    expect(backoffDelay(2, opts, () => 1)).toBe(480);
    expect(backoffDelay(20, opts, () => 1)).toBe(5_000);
  });
});
