// Statistics over rounds: medians, spreads, per-round ratios and differences, rotated order, number formatting.
import { describe, expect, test } from 'vitest';
import type { Measurement } from '../../../bench/harness/scenario.js';
import { formatNumber, formatRatio, formatSpread, median, perRoundDifferences, perRoundRatios, relativeSpread, rotatedOrder, spread, valuesOf } from '../../../bench/harness/stats.js';

test('median of odd and even counts, NaN when empty', () => {
  expect(median([3, 1, 2])).toBe(2);
  expect(median([4, 1, 3, 2])).toBe(2.5);
  expect(median([])).toBeNaN();
});

test('spread ignores non-numbers and reports min, max, n', () => {
  expect(spread([5, null, 1, undefined, 3, Number.NaN])).toEqual({ median: 3, min: 1, max: 5, n: 3 });
  expect(spread([null])).toBeNull();
  expect(relativeSpread({ median: 10, min: 8, max: 12, n: 3 })).toBeCloseTo(0.4);
});

const rounds: Measurement[] = [
  { variant: 'tessera pair', round: 1, cpu: 60, rps: 10_000 },
  { variant: 'nginx pair', round: 1, cpu: 40, rps: 16_000 },
  { variant: 'tessera pair', round: 2, cpu: 90, rps: 5_000 },
  { variant: 'nginx pair', round: 2, cpu: 50, rps: 8_000 },
  { variant: 'tessera pair', round: 3, cpu: 70, skipped: 'x' },
  { variant: 'nginx pair', round: 4, cpu: 45 },
];

describe('per-round ratios', () => {
  test('are taken inside each round, only where both variants were measured', () => {
    expect(perRoundRatios(rounds, 'tessera pair', 'nginx pair', 'cpu')).toEqual([1.5, 1.8]);
    // req/s halves in round 2 for both: the per-round ratio stays put while the raw medians move.
    expect(perRoundRatios(rounds, 'tessera pair', 'nginx pair', 'rps')).toEqual([0.625, 0.625]);
  });
  test('differences likewise', () => {
    expect(perRoundDifferences(rounds, 'tessera pair', 'nginx pair', 'cpu')).toEqual([20, 40]);
  });
  test('valuesOf collects one variant', () => {
    expect(valuesOf(rounds, 'nginx pair', 'cpu')).toEqual([40, 50, 45]);
  });
});

test('rotatedOrder: every variant once per round, each one first in turn', () => {
  const v = ['a', 'b', 'c', 'd'];
  const orders = [0, 1, 2, 3, 4].map((r) => rotatedOrder(v, r));
  for (const o of orders) expect([...o].sort()).toEqual(v);
  expect(orders.map((o) => o[0])).toEqual(['a', 'b', 'c', 'd', 'a']);
  expect(rotatedOrder(v, 1)).toEqual(['b', 'c', 'd', 'a']);
  expect(rotatedOrder([], 3)).toEqual([]);
});

test('formatting: grouped thousands, 3 significant digits, spreads and ratios', () => {
  expect(formatNumber(87381.4)).toBe('87 381');
  expect(formatNumber(36.84)).toBe('36.8');
  expect(formatNumber(7)).toBe('7');
  expect(formatNumber(0.456)).toBe('0.46');
  expect(formatNumber(Number.NaN)).toBe('–');
  expect(formatSpread({ median: 60.2, min: 48.1, max: 72.3, n: 5 })).toBe('60.2 (48.1–72.3)');
  expect(formatSpread({ median: 60.2, min: 60.2, max: 60.2, n: 1 })).toBe('60.2');
  expect(formatSpread(null)).toBe('–');
  expect(formatRatio({ median: 1.634, min: 1.52, max: 1.9, n: 5 })).toBe('1.63× (1.52–1.90)');
});
