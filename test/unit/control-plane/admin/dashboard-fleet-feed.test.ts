// The dashboard's event stream spaces its builds by their cost, on fake time: a build that took d ms is followed by
// the next no sooner than costFactor × d after it ended, whether a poll, an announcement, a new viewer or
// GET /api/fleet asks (the last gets the last view meanwhile); a cheap build keeps the 2 s poll. So a large fleet's
// view costs at most ~1/(costFactor+1) of the process however many pages watch (audit 54b F5: every 2 s, whatever
// it cost).
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, test } from 'vitest';
import { FleetFeed } from '../../../../control-plane/src/admin/dashboard/fleet-feed.js';
import type { FleetView } from '../../../../control-plane/src/admin/dashboard/fleet-view.js';
import { FakeTime } from '../../../helpers/fake-time.js';

/** A page's response: what the feed writes to it is kept; close() is the page going away. */
class Page extends EventEmitter {
  text = '';
  writableEnded = false;
  destroyed = false;
  writableLength = 0;
  writeHead(): this {
    return this;
  }
  write(s: string): boolean {
    this.text += s;
    return true;
  }
  end(): void {
    this.writableEnded = true;
  }
  destroy(): void {
    this.destroyed = true;
  }
  close(): void {
    this.emit('close');
  }
}

/** A feed whose builds take `costMs` of fake time each: each build waits until the test lets it finish. */
function feed(costMs: number, opts: { costFactor?: number } = {}) {
  const time = new FakeTime();
  let builds = 0;
  let finish: (() => void) | undefined;
  const f = new FleetFeed({
    clock: time,
    timers: time,
    pollMs: 2_000,
    heartbeatMs: 60_000,
    ...opts,
    build: () =>
      new Promise<FleetView>((resolve) => {
        builds++;
        finish = () => {
          finish = undefined;
          resolve({ generatedAtMs: time.nowMs(), n: builds } as unknown as FleetView);
        };
      }),
  });
  /** Lets the running build end after its cost (fake time moves by it), and the feed react. */
  const complete = async () => {
    if (!finish) return false;
    time.advance(costMs);
    finish();
    for (let i = 0; i < 5; i++) await nextTurn();
    return true;
  };
  /** Moves fake time by `ms` in 100 ms steps, completing every build that starts on the way. */
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 100) {
      time.advance(100);
      await nextTurn();
      await complete();
    }
  };
  const attach = () => {
    const p = new Page();
    f.attach(p as unknown as ServerResponse);
    return p;
  };
  return { f, time, builds: () => builds, complete, run, attach };
}

describe('fleet feed: builds spaced by their cost', () => {
  test('a cheap build keeps the 2 s poll', async () => {
    const t = feed(10);
    t.attach();
    await t.complete();
    await t.run(10_000);
    // One at attach, then one per poll (every 2 s; 10 ms × 20 = 200 ms of spacing is less than a poll).
    expect(t.builds()).toBe(1 + 5);
    t.f.close();
  });

  test('a build of 1 s puts the next 20 s after it ended, whatever asks meanwhile: polls, announcements, viewers, /api/fleet', async () => {
    const t = feed(1_000);
    const first = t.attach();
    await t.complete();
    expect(t.builds()).toBe(1);
    const ended = t.time.nowMs();
    const pages = [first];
    let fleetAnswers = 0;
    for (let step = 0; step < 19; step++) {
      await t.run(1_000);
      t.f.refresh();
      pages.push(t.attach());
      pages.shift()!.close();
      fleetAnswers += ((await t.f.current()) as unknown as { n: number }).n === 1 ? 1 : 0;
    }
    expect(t.time.nowMs() - ended).toBeLessThan(20_000);
    expect([t.builds(), fleetAnswers]).toEqual([1, 19]);
    // The spacing passed: one build for everything that asked.
    await t.run(1_100);
    expect(t.builds()).toBe(2);
    // It took 1 s again: the next is again 20 s after it.
    await t.run(19_000);
    expect(t.builds()).toBe(2);
    await t.run(2_100);
    expect(t.builds()).toBe(3);
    t.f.close();
  });

  test('costFactor 0 spaces by the poll alone (as before: a 1 s build every 2 s or sooner); the last viewer gone, no timer is left', async () => {
    const t = feed(1_000, { costFactor: 0 });
    const p = t.attach();
    await t.complete();
    await t.run(6_000);
    expect(t.builds()).toBeGreaterThanOrEqual(1 + 3);
    p.close();
    await t.run(1_000);
    expect(t.time.pending).toBe(0);
  });
});
