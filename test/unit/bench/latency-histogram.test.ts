// The log-bucketed latency histogram: percentiles within its 1 % resolution, merging, empty and odd input.
import { expect, test } from 'vitest';
import { LatencyHistogram } from '../../../bench/harness/latency-histogram.js';

function exactQuantile(sorted: number[], q: number): number {
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
}

test('percentiles match the exact ones within 1 % on a skewed distribution', () => {
  const h = new LatencyHistogram();
  const values: number[] = [];
  let seed = 7;
  for (let i = 0; i < 50_000; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const u = seed / 2 ** 31;
    const v = 0.2 + -Math.log(1 - u) * 1.5; // exponential tail from 0.2 ms
    values.push(v);
    h.recordMs(v);
  }
  values.sort((a, b) => a - b);
  for (const q of [0.5, 0.9, 0.99, 0.999]) {
    expect(Math.abs(h.quantileMs(q) / exactQuantile(values, q) - 1)).toBeLessThan(0.01);
  }
  const s = h.summary();
  expect(s.count).toBe(50_000);
  expect(s.minMs).toBe(values[0]);
  expect(s.maxMs).toBe(values.at(-1));
  expect(s.meanMs).toBeCloseTo(values.reduce((a, b) => a + b, 0) / values.length, 6);
});

test('merge adds counts; an empty histogram yields NaN; negative or NaN input is ignored', () => {
  const a = new LatencyHistogram();
  const b = new LatencyHistogram();
  expect(a.summary().p50Ms).toBeNaN();
  a.recordMs(1);
  a.recordMs(Number.NaN);
  a.recordMs(-3);
  b.recordMs(10);
  b.recordMs(10);
  a.merge(b);
  expect(a.count).toBe(3);
  expect(a.quantileMs(0.5)).toBeCloseTo(10, 0);
  expect(a.quantileMs(0.01)).toBeCloseTo(1, 1);
});
