// AwaitingAttempts: the attempts an endpoint waits on, oldest first, threaded through the attempts themselves
// (awaiting-attempts.ts). Removal from anywhere keeps the order of the rest; an attempt leaves with its links cleared.
import { describe, expect, test } from 'vitest';
import { type AwaitingAttempt, AwaitingAttempts } from '../../../../proxy/src/routing/awaiting-attempts.js';

const attempt = (placedAtMs: number): AwaitingAttempt => ({ placedAtMs, awaitingPrev: null, awaitingNext: null, awaitingListed: false });

function order(list: AwaitingAttempts): number[] {
  const out: number[] = [];
  for (let a = list.oldest; a !== null; a = a.awaitingNext) out.push(a.placedAtMs);
  return out;
}

describe('AwaitingAttempts', () => {
  test('oldest first; removal from the front, the middle and the end keeps the order of the rest', () => {
    const list = new AwaitingAttempts();
    const [a, b, c, d] = [attempt(1), attempt(2), attempt(3), attempt(4)];
    for (const x of [a, b, c, d]) list.add(x);
    expect([list.size, list.oldest?.placedAtMs, order(list)]).toEqual([4, 1, [1, 2, 3, 4]]);
    expect(list.delete(b)).toBe(true);
    expect(order(list)).toEqual([1, 3, 4]);
    expect(list.delete(a)).toBe(true);
    expect([list.oldest?.placedAtMs, order(list)]).toEqual([3, [3, 4]]);
    expect(list.delete(d)).toBe(true);
    expect(order(list)).toEqual([3]);
    list.add(attempt(5));
    expect(order(list)).toEqual([3, 5]);
    expect(list.size).toBe(2);
  });

  test('an attempt not in the list (answered already) is not taken twice; its links are cleared when it leaves', () => {
    const list = new AwaitingAttempts();
    const [a, b] = [attempt(1), attempt(2)];
    list.add(a);
    list.add(b);
    list.add(a); // already in: no second place
    expect(list.size).toBe(2);
    expect(list.delete(a)).toBe(true);
    expect(list.delete(a)).toBe(false);
    expect([a.awaitingPrev, a.awaitingNext, a.awaitingListed]).toEqual([null, null, false]);
    expect(list.delete(b)).toBe(true);
    expect([list.size, list.oldest]).toEqual([0, null]);
    expect(list.delete(attempt(3))).toBe(false);
  });

  test('many attempts in and out in any order: the list matches a reference queue', () => {
    const list = new AwaitingAttempts();
    const reference: AwaitingAttempt[] = [];
    let seed = 7;
    const rand = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let i = 0; i < 5_000; i++) {
      if (reference.length === 0 || rand() < 0.55) {
        const a = attempt(i);
        list.add(a);
        reference.push(a);
      } else {
        const a = reference.splice(Math.floor(rand() * reference.length), 1)[0]!;
        expect(list.delete(a)).toBe(true);
      }
      expect(list.size).toBe(reference.length);
      expect(list.oldest).toBe(reference[0] ?? null);
    }
    expect(order(list)).toEqual(reference.map((a) => a.placedAtMs));
  });
});
