// The request body's pace on the edge's HTTP/2 → HTTP/1.1 bridge (audit 61i F2: HTTP/2 streams trickled a byte a
// second held an http route's pool): after the grace each byte buys 1/rate s; behind that, unless the proxy holds the
// body back, it is cut; one stopped (its body ended, its answer begun) never is. On a fake clock.
import { describe, expect, test } from 'vitest';
import { BodyPace } from '../../../../proxy/src/h2/body-pace.js';
import { FakeTime } from '../../../helpers/fake-time.js';

function setup(held = () => false) {
  const time = new FakeTime();
  let behind = 0;
  const pace = new BodyPace({ bytesPerSecond: 100, graceMs: 1_000, nowMs: () => time.nowMs(), timers: time, held, behind: () => behind++ });
  return { time, pace, behind: () => behind };
}

describe('BodyPace', () => {
  test('behind its pace after the grace: cut once; each byte bought 10 ms', () => {
    const { time, pace, behind } = setup();
    pace.start();
    time.advance(999);
    expect(behind()).toBe(0);
    pace.received(50); // 500 ms more
    time.advance(400);
    expect(behind()).toBe(0);
    time.advance(101);
    expect(behind()).toBe(1);
    time.advance(10_000);
    expect(behind()).toBe(1);
  });

  test('at its pace: never cut', () => {
    const { time, pace, behind } = setup();
    pace.start();
    for (let i = 0; i < 50; i++) {
      time.advance(500);
      pace.received(60);
    }
    expect(behind()).toBe(0);
  });

  test('held back by the proxy when due: a new grace, not a cut', () => {
    let held = true;
    const { time, pace, behind } = setup(() => held);
    pace.start();
    time.advance(5_000);
    expect(behind()).toBe(0);
    held = false;
    time.advance(999);
    expect(behind()).toBe(0);
    time.advance(1_001);
    expect(behind()).toBe(1);
  });

  test('not started (Expect: 100-continue before its first byte) or stopped: never cut', () => {
    const a = setup();
    a.time.advance(60_000);
    expect(a.behind()).toBe(0);
    expect(a.pace.started).toBe(false);
    const b = setup();
    b.pace.start();
    b.pace.stop();
    b.time.advance(60_000);
    expect(b.behind()).toBe(0);
  });
});
