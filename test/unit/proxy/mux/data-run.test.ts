// DataRun on its own: one payload per stream per event-loop turn, in the order the streams first had data; a run of
// RUN_BYTES goes at once; flush() hands a run on before its stream's FIN or RST; each run is kept on its stream and
// nothing of a turn is held after it (the session's long-lived table of runs is gone: data-run.ts).
import { describe, expect, test } from 'vitest';
import { DataRun, RUN_BYTES, type RunHolder } from '../../../../proxy/src/mux/data-run.js';

class Holder implements RunHolder {
  run: Buffer[] | null = null;
  runBytes = 0;
  readonly got: string[] = [];
  constructor(readonly name: string) {}
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

function runOf(order: Holder[]) {
  return new DataRun<Holder>((h, payload) => {
    order.push(h);
    h.got.push(payload.toString('latin1'));
  });
}

describe('DataRun', () => {
  test('pieces of one turn reach each stream joined, once, in the order the streams first had data', async () => {
    const order: Holder[] = [];
    const run = runOf(order);
    const [a, b, c] = [new Holder('a'), new Holder('b'), new Holder('c')];
    for (const [h, s] of [[b, 'b1'], [a, 'a1'], [b, 'b2'], [c, 'c1'], [a, 'a2'], [b, 'b3']] as const) run.push(h, Buffer.from(s));
    expect(order).toEqual([]); // nothing before the end of the turn
    await nextTurn();
    expect(order.map((h) => h.name)).toEqual(['b', 'a', 'c']);
    expect([a.got, b.got, c.got]).toEqual([['a1a2'], ['b1b2b3'], ['c1']]);
    // Each stream's run was taken off it.
    for (const h of [a, b, c]) expect([h.run, h.runBytes]).toEqual([null, 0]);
    // The next turn starts empty and delivers only what it was given.
    run.push(c, Buffer.from('c2'));
    await nextTurn();
    expect(order.map((h) => h.name)).toEqual(['b', 'a', 'c', 'c']);
    expect(c.got).toEqual(['c1', 'c2']);
  });

  test('a run that reaches RUN_BYTES goes at once, without waiting for the turn', async () => {
    const order: Holder[] = [];
    const run = runOf(order);
    const bulk = new Holder('bulk');
    run.push(bulk, Buffer.alloc(RUN_BYTES - 1, 0x61));
    expect(bulk.got).toEqual([]);
    run.push(bulk, Buffer.from('b'));
    expect(bulk.got.map((g) => g.length)).toEqual([RUN_BYTES]);
    // A single payload that large is handed on as it is, not copied.
    const big = Buffer.alloc(RUN_BYTES, 0x63);
    let handed: Buffer | undefined;
    new DataRun<Holder>((_h, p) => {
      handed = p;
    }).push(new Holder('x'), big);
    expect(handed).toBe(big);
    await nextTurn();
    expect(order.length).toBe(1); // nothing more at the turn's end
  });

  test('flush() hands a stream its run now (before its FIN); data after it in the same turn is a new run', async () => {
    const order: Holder[] = [];
    const run = runOf(order);
    const [a, b] = [new Holder('a'), new Holder('b')];
    run.push(a, Buffer.from('a1'));
    run.push(b, Buffer.from('b1'));
    run.flush(a);
    expect(a.got).toEqual(['a1']);
    run.flush(a); // nothing left: no empty delivery
    expect(a.got).toEqual(['a1']);
    run.push(a, Buffer.from('a2'));
    await nextTurn();
    expect(order.length).toBe(3);
    expect([a.got, b.got]).toEqual([['a1', 'a2'], ['b1']]);
  });

  test('a turn with many streams delivers each once and keeps none of them afterwards', async () => {
    const order: Holder[] = [];
    const run = runOf(order);
    const holders = Array.from({ length: 1_000 }, (_, i) => new Holder(`s${i}`));
    for (let round = 0; round < 3; round++) for (const h of holders) run.push(h, Buffer.from([0x61 + round]));
    await nextTurn();
    expect(order.length).toBe(1_000);
    expect(new Set(order).size).toBe(1_000);
    expect(holders.every((h) => h.got.length === 1 && h.got[0] === 'abc' && h.run === null)).toBe(true);
    // The same DataRun serves the next turn normally after a large one.
    run.push(holders[7]!, Buffer.from('z'));
    await nextTurn();
    expect(holders[7]!.got).toEqual(['abc', 'z']);
  });
});
