// The heartbeat's counting: silence is judged in the primary's rounds, so a frozen pod waking up (every ping late
// by wall-clock time, the answers already waiting) does not kill healthy workers, and a worker silent for the kill's
// rounds is killed even if the clock barely moved.
import { expect, test } from 'vitest';
import { WorkerHeartbeat } from '../../../../proxy/src/workers/worker-heartbeat.js';

const times = { periodMs: 5_000, killAfterMs: 30_000 };

test('an answered ping leaves the worker answering round after round', () => {
  const hb = new WorkerHeartbeat(times);
  for (let t = 0; t < 100_000; t += 5_000) {
    expect(hb.round(t)).toBe('ping');
    expect(hb.verdict(t + 5)).toEqual({ kind: 'answering' });
    hb.answered();
  }
});

test('a ping missed for one round is silent (not ready); six rounds is the kill', () => {
  const hb = new WorkerHeartbeat(times);
  expect(hb.round(0)).toBe('ping');
  expect(hb.verdict(4_999)).toEqual({ kind: 'answering' });
  const actions = [5_000, 10_000, 15_000, 20_000, 25_000].map((t) => hb.round(t));
  expect(actions).toEqual(['wait', 'wait', 'wait', 'wait', 'wait']);
  expect(hb.verdict(27_000)).toEqual({ kind: 'silent', forMs: 27_000 });
  expect(hb.round(30_000)).toBe('kill');
  expect(hb.verdict(30_000)).toEqual({ kind: 'hung', forMs: 30_000 });
  expect(hb.silentForMs(30_000)).toBe(30_000);
});

test('a frozen pod: the first round after a long pause counts one miss, not the kill', () => {
  const hb = new WorkerHeartbeat(times);
  expect(hb.round(0)).toBe('ping');
  // Ten minutes frozen: the round runs before the waiting answer is read.
  expect(hb.round(600_000)).toBe('wait');
  expect(hb.verdict(600_000).kind).toBe('silent');
  hb.answered();
  expect(hb.verdict(600_001)).toEqual({ kind: 'answering' });
  expect(hb.round(605_000)).toBe('ping');
});

test('a clock stepped back does not make a negative silence; a new process in the slot starts clean', () => {
  const hb = new WorkerHeartbeat(times);
  hb.round(10_000);
  hb.round(15_000);
  expect(hb.verdict(1_000)).toEqual({ kind: 'silent', forMs: 0 });
  hb.reset();
  expect(hb.verdict(20_000)).toEqual({ kind: 'answering' });
  expect(hb.round(20_000)).toBe('ping');
});

test('a kill time shorter than the period still needs one missed round', () => {
  const hb = new WorkerHeartbeat({ periodMs: 5_000, killAfterMs: 1_000 });
  expect(hb.round(0)).toBe('ping');
  expect(hb.round(5_000)).toBe('kill');
});
