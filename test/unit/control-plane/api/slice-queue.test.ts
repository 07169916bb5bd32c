// SliceQueue (Config/Watch's send queue): items run in the order first queued, each at most once while queued,
// in slices that end once their cost reaches the budget or their item count the cap; the next slice waits for a
// turn of its own; flushed() resolves once what was queued before it has run; a dropped item does not run.
import { expect, test } from 'vitest';
import { SliceQueue } from '../../../../control-plane/src/api/slice-queue.js';

function harness(budget: number, maxItems: number, cost: (item: string) => number = () => 1) {
  const turns: (() => void)[] = [];
  const ran: string[][] = [];
  const q = new SliceQueue<string>({
    run: (item) => {
      ran.at(-1)!.push(item);
      return cost(item);
    },
    budget,
    maxItems,
    defer: (fn) =>
      turns.push(() => {
        ran.push([]);
        fn();
      }),
  });
  /** Runs the scheduled turns one by one; returns how many ran. */
  const drain = () => {
    let n = 0;
    while (turns.length > 0 && n < 1_000) {
      turns.shift()!();
      n++;
    }
    return n;
  };
  return { q, ran, drain, turns };
}

test('in order, once each, a slice per turn bounded by cost and by count', () => {
  const h = harness(10, 3, (item) => (item.startsWith('big') ? 8 : 1));
  for (const item of ['a', 'big1', 'b', 'a', 'big2', 'big3', 'c', 'd', 'e', 'f']) h.q.add(item);
  expect(h.q.size).toBe(9);
  // Nothing runs in the caller's turn.
  expect(h.ran).toEqual([]);
  expect(h.turns).toHaveLength(1);
  h.drain();
  expect(h.ran).toEqual([['a', 'big1', 'b'], ['big2', 'big3'], ['c', 'd', 'e'], ['f']]);
  expect(h.q.size).toBe(0);
});

test('an item queued again after it ran runs again, at the end; one queued still keeps its place', () => {
  const h = harness(100, 2);
  h.q.add('a');
  h.q.add('b');
  h.q.add('c');
  h.turns.shift()!();
  h.q.add('a');
  h.q.add('c');
  h.drain();
  expect(h.ran).toEqual([['a', 'b'], ['c', 'a']]);
});

test('flushed() waits for what was queued before it, not for what came after; drop() skips an item', async () => {
  const h = harness(100, 1);
  await h.q.flushed();
  h.q.add('a');
  h.q.add('b');
  let first = false;
  void h.q.flushed().then(() => (first = true));
  h.q.add('c');
  h.q.add('d');
  h.q.drop('d');
  let second = false;
  void h.q.flushed().then(() => (second = true));
  h.turns.shift()!();
  await Promise.resolve();
  expect(first).toBe(false);
  h.turns.shift()!();
  await Promise.resolve();
  expect([first, second]).toEqual([true, false]);
  h.drain();
  await Promise.resolve();
  expect(second).toBe(true);
  expect(h.ran.flat()).toEqual(['a', 'b', 'c']);
});

test('a run that throws leaves the rest queued for the next turn', () => {
  const turns: (() => void)[] = [];
  const ran: string[] = [];
  const q = new SliceQueue<string>({
    run: (item) => {
      ran.push(item);
      if (item === 'bad') throw new Error('boom');
      return 1;
    },
    budget: 100,
    maxItems: 100,
    defer: (fn) => turns.push(fn),
  });
  for (const item of ['a', 'bad', 'b']) q.add(item);
  expect(() => turns.shift()!()).toThrow('boom');
  expect(turns).toHaveLength(1);
  turns.shift()!();
  expect(ran).toEqual(['a', 'bad', 'b']);
});
