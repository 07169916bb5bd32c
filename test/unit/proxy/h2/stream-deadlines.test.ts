// The timers of one forwarded HTTP/2 stream (stream-deadlines.ts) on real timers with short deadlines: the head
// deadline only once armed and never after headSent, the idle one pushed back by movement (re-checked lazily), the
// total one, a backoff, and clear stopping all of them.
import { describe, expect, test } from 'vitest';
import { type DeadlineFlag, StreamDeadlines } from '../../../../proxy/src/h2/stream-deadlines.js';
import { realTimers } from '../../../../shared-io/timers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const settings = (s: { requestMs?: number; idleMs?: number; totalMs?: number }) => ({ requestMs: s.requestMs ?? 10_000, idleMs: s.idleMs ?? 0, totalMs: s.totalMs, nowMs: () => performance.now(), timers: realTimers });

describe('StreamDeadlines', () => {
  test('the head deadline runs only once armed, and stops at the head', async () => {
    const cuts: DeadlineFlag[] = [];
    const d = new StreamDeadlines(settings({ requestMs: 20 }), (r) => cuts.push(r), false);
    await sleep(50);
    expect(cuts).toEqual([]);
    d.armHead();
    await sleep(50);
    expect(cuts).toEqual(['request_timeout']);
    const e = new StreamDeadlines(settings({ requestMs: 20 }), (r) => cuts.push(r), true);
    e.headSent();
    await sleep(50);
    expect(cuts).toEqual(['request_timeout']);
    d.clear();
  });

  test('movement pushes the idle deadline back; it cuts once the stream stays still', async () => {
    const cuts: DeadlineFlag[] = [];
    const d = new StreamDeadlines(settings({ idleMs: 300 }), (r) => cuts.push(r), false);
    // 400 ms of movement, past the 300 ms deadline (a loaded machine's late sleep would need to take over 260 ms).
    for (let i = 0; i < 10; i++) {
      await sleep(40);
      d.moved();
    }
    expect(cuts).toEqual([]);
    await sleep(700);
    expect(cuts).toEqual(['stream_idle_timeout']);
  });

  test('the total deadline, and its time for the route', async () => {
    const cuts: DeadlineFlag[] = [];
    const before = performance.now();
    const d = new StreamDeadlines(settings({ totalMs: 20 }), (r) => cuts.push(r), false);
    expect(d.totalDeadlineMs).toBeGreaterThanOrEqual(before + 20);
    expect(new StreamDeadlines(settings({}), () => {}, false).totalDeadlineMs).toBe(Number.POSITIVE_INFINITY);
    await sleep(60);
    expect(cuts).toEqual(['total_timeout']);
  });

  test('clear stops every timer, a backoff included', async () => {
    const cuts: DeadlineFlag[] = [];
    let went = false;
    const d = new StreamDeadlines(settings({ requestMs: 20, idleMs: 20, totalMs: 20 }), (r) => cuts.push(r), true);
    d.backoff(() => (went = true), 20);
    d.clear();
    await sleep(60);
    expect(cuts).toEqual([]);
    expect(went).toBe(false);
  });
});
