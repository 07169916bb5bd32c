// The webhook's bound on reviews held at once (audit 4, B1/B2), with a fake clock and timers: by count, by body bytes
// beyond each review's free share, paced; waiting is bounded in length and time; small reviews are not held up by a
// large one waiting for budget; refusals are logged at a bounded rate.
import { describe, expect, test } from 'vitest';
import { AdmissionGate, type GatePass } from '../../../../control-plane/src/injector/admission-gate.js';
import { RefusalLog } from '../../../../control-plane/src/injector/refusal-log.js';

function fakeTime() {
  let now = 0;
  const pending: { fn: () => void; at: number }[] = [];
  return {
    clock: { nowMs: () => now },
    timers: {
      setTimeout: (fn: () => void, ms: number) => {
        const h = { fn, at: now + ms };
        pending.push(h);
        return h;
      },
      clearTimeout: (h: unknown) => {
        const i = pending.indexOf(h as (typeof pending)[number]);
        if (i >= 0) pending.splice(i, 1);
      },
      setInterval: () => undefined,
      clearInterval: () => {},
    },
    /** Moves time on, running what falls due, in order. */
    async advance(ms: number) {
      const end = now + ms;
      for (;;) {
        pending.sort((a, b) => a.at - b.at);
        const next = pending[0];
        if (!next || next.at > end) break;
        pending.shift();
        now = next.at;
        next.fn();
        await Promise.resolve();
      }
      now = end;
      await new Promise((r) => setImmediate(r));
    },
  };
}

const KIB = 1024;
function gate(over: Partial<ConstructorParameters<typeof AdmissionGate>[0]> = {}) {
  const t = fakeTime();
  const g = new AdmissionGate({ maxActive: 4, maxBytes: 1024 * KIB, freeBytes: 64 * KIB, maxWaiting: 3, maxWaitMs: 2_000, bytesPerSecond: 1024 * KIB, timers: t.timers, clock: t.clock, ...over });
  return { g, t };
}

/** Starts acquire() calls and records what each got, in order. */
function track(g: AdmissionGate, sizes: number[]) {
  const got: (GatePass | null | 'pending')[] = sizes.map(() => 'pending');
  sizes.forEach((s, i) => void g.acquire(s).then((p) => (got[i] = p)));
  return got;
}
const flush = () => new Promise((r) => setImmediate(r));

describe('AdmissionGate', () => {
  test('small reviews are bounded by count only; the next waits for a place, then gets it', async () => {
    const { g } = gate();
    const got = track(g, [1000, 1000, 1000, 1000, 1000]);
    await flush();
    expect(got.filter((p) => p !== 'pending' && p !== null)).toHaveLength(4);
    expect(got[4]).toBe('pending');
    expect(g.bytes).toBe(0);
    (got[0] as GatePass).release();
    await flush();
    expect(got[4]).not.toBe('pending');
    expect(got[4]).not.toBeNull();
    expect(g.active).toBe(4);
  });

  test('the wait is bounded: a full line is refused at once, a long wait after maxWaitMs', async () => {
    const { g, t } = gate({ maxActive: 1 });
    const got = track(g, [0, 0, 0, 0, 0]);
    await flush();
    expect(got[4]).toBeNull(); // 1 active, 3 waiting, the fifth refused at once
    expect(got.slice(1, 4)).toEqual(['pending', 'pending', 'pending']);
    await t.advance(2_000);
    expect(got.slice(1, 4)).toEqual([null, null, null]);
    expect(g.waiting).toBe(0);
  });

  test('large bodies share the byte budget; a small review is not held up behind a large one', async () => {
    const { g, t } = gate({ bytesPerSecond: 1e12 });
    const big = 64 * KIB + 600 * KIB;
    const got = track(g, [big, big, 2 * KIB]);
    await t.advance(1);
    expect(got[0]).not.toBeNull();
    expect(got[1]).toBe('pending'); // 600 + 600 KiB > 1 MiB
    expect(got[2]).not.toBe('pending'); // fits by count alone
    expect(g.bytes).toBe(600 * KIB);
    (got[0] as GatePass).release();
    await t.advance(1);
    expect(got[1]).not.toBe('pending');
    expect(g.bytes).toBe(600 * KIB);
  });

  test('bytes of a chunked body count as they arrive; over the budget take() says no', async () => {
    const { g, t } = gate({ bytesPerSecond: 1e12 });
    const a = (await g.acquire(0))!;
    const b = (await g.acquire(0))!;
    expect(a.take(64 * KIB)).toBe(true); // the free share
    expect(g.bytes).toBe(0);
    expect(a.take(900 * KIB)).toBe(true);
    expect(b.take(64 * KIB + 200 * KIB)).toBe(false); // refused: its connection is closed
    b.release();
    a.release();
    a.release(); // twice: counted once
    expect(g.bytes).toBe(0);
    expect(g.active).toBe(0);
    await t.advance(1);
    const c = (await g.acquire(0))!;
    expect(c.take(64 * KIB + 1000 * KIB)).toBe(true);
  });

  test('a body larger than the whole budget is refused at once; one that fits is paced', async () => {
    const { g, t } = gate({ maxBytes: 1024 * KIB, bytesPerSecond: 512 * KIB });
    expect(await g.acquire(64 * KIB + 1025 * KIB)).toBeNull();
    const first = (await g.acquire(64 * KIB + 1024 * KIB))!; // the initial burst
    first.release();
    const got = track(g, [64 * KIB + 512 * KIB]);
    await flush();
    expect(got[0]).toBe('pending'); // the budget is free, the pace is not
    await t.advance(999);
    expect(got[0]).toBe('pending');
    await t.advance(2);
    expect(got[0]).not.toBe('pending');
    expect(got[0]).not.toBeNull();
  });
});

describe('RefusalLog', () => {
  test('one line each for the first of a window, then one summary with counts by status', async () => {
    const t = fakeTime();
    const lines: [Record<string, unknown>, string][] = [];
    const log = new RefusalLog({ warn: (o, m) => lines.push([o, m]), clock: t.clock, timers: t.timers, burst: 2, windowMs: 60_000 });
    for (const status of [400, 413, 400, 431, 0]) log.record({ status, reason: 'r'.repeat(500), remote: '10.0.0.1' });
    expect(lines).toHaveLength(2);
    expect(lines[0]).toEqual([{ status: 400, reason: 'r'.repeat(200), remote: '10.0.0.1' }, 'injector: request refused']);
    await t.advance(60_000);
    expect(lines).toHaveLength(3);
    expect(lines[2]).toEqual([{ suppressed: 3, counts: { '400': 1, '431': 1, '0': 1 } }, 'injector: more requests refused (not logged one by one)']);
    log.record({ status: 415, reason: 'content-type' });
    expect(lines).toHaveLength(4);
    log.flush();
    expect(lines).toHaveLength(4);
  });
});
