// The keepalive clock both the multiplexed transport and the HTTP/2 sessions to peer proxies keep: a PING only after
// a quiet interval and one at a time, reads postponing it, an answer clearing it, a PING unanswered past the timeout
// meaning a dead peer. Pure: the time is passed in.
import { describe, expect, test } from 'vitest';
import { KeepaliveClock } from '../../../../proxy/src/upstream/keepalive-clock.js';

const S = { intervalMs: 15_000, timeoutMs: 20_000 };

describe('KeepaliveClock', () => {
  test('a PING is due only after the interval with nothing read, once, and the peer is dead past the timeout', () => {
    const k = new KeepaliveClock(S, 1_000);
    expect(k.pingDue(16_000)).toBe(false); // exactly the interval: not yet
    expect(k.nextCheckMs()).toBe(16_000);
    expect(k.pingDue(16_001)).toBe(true);
    expect(k.awaiting).toBe(true);
    expect(k.pingDue(17_000)).toBe(false); // one PING at a time
    expect(k.nextCheckMs()).toBe(36_001);
    expect(k.expired(36_001)).toBe(false);
    expect(k.expired(36_002)).toBe(true);
  });

  test('reads postpone the PING; an answer clears it, and reads alone do not', () => {
    const k = new KeepaliveClock(S, 0);
    k.read(10_000);
    expect(k.pingDue(20_000)).toBe(false);
    expect(k.pingDue(25_001)).toBe(true);
    k.read(30_000); // something read, but not the answer: the PING is still out
    expect(k.awaiting).toBe(true);
    expect(k.expired(45_002)).toBe(true);
    k.answered();
    expect(k.awaiting).toBe(false);
    expect(k.expired(45_002)).toBe(false);
    expect(k.nextCheckMs()).toBe(45_000);
  });
});
