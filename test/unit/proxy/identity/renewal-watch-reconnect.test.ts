// ReconnectingStream (the Config/Watch keeper): reopens after errors with growing jittered backoff, resets the
// backoff once a message arrives, drops late callbacks of a replaced stream, and stops cleanly.
import { describe, expect, test } from 'vitest';
import { ReconnectingStream, type StreamCallbacks } from '../../../../proxy/src/identity/reconnecting-stream.js';
import type { Timers } from '../../../../shared-io/timers.js';

class ManualTimeouts implements Pick<Timers, 'setTimeout' | 'clearTimeout'> {
  pending: { fn: () => void; ms: number }[] = [];
  setTimeout(fn: () => void, ms: number) {
    const t = { fn, ms };
    this.pending.push(t);
    return t;
  }
  clearTimeout(h: unknown) {
    this.pending = this.pending.filter((t) => t !== h);
  }
  fire() {
    const t = this.pending.shift()!;
    t.fn();
    return t.ms;
  }
}

function harness() {
  const timers = new ManualTimeouts();
  const streams: { cb: StreamCallbacks<string>; cancelled: boolean }[] = [];
  const got: string[] = [];
  const delays: number[] = [];
  const rs = new ReconnectingStream<string>({
    open: (cb) => {
      const s = { cb, cancelled: false };
      streams.push(s);
      return {
        cancel: () => {
          s.cancelled = true;
        },
      };
    },
    onMessage: (m) => got.push(m),
    onDisconnect: (_e, ms) => delays.push(ms),
    backoff: { initialMs: 100, maxMs: 1_000, multiplier: 2, jitter: 0 },
    timers,
    random: () => 0.5,
  });
  return { rs, timers, streams, got, delays };
}

describe('ReconnectingStream', () => {
  test('reconnects with exponential backoff and resets it after a message', () => {
    const h = harness();
    h.rs.start();
    expect(h.streams).toHaveLength(1);
    h.streams[0]!.cb.onClose(new Error('UNAVAILABLE'));
    expect(h.rs.connected).toBe(false);
    expect(h.timers.fire()).toBe(100);
    h.streams[1]!.cb.onClose(new Error('UNAVAILABLE'));
    expect(h.timers.fire()).toBe(200);
    h.streams[2]!.cb.onClose(new Error('UNAVAILABLE'));
    expect(h.timers.fire()).toBe(400);
    h.streams[3]!.cb.onMessage('snapshot-1');
    expect(h.got).toEqual(['snapshot-1']);
    h.streams[3]!.cb.onClose();
    expect(h.timers.fire()).toBe(100);
    expect(h.delays).toEqual([100, 200, 400, 100]);
    for (let i = 0; i < 10; i++) {
      h.streams.at(-1)!.cb.onClose(new Error('x'));
      h.timers.fire();
    }
    expect(h.delays.at(-1)).toBe(1_000);
  });

  test('restart replaces the stream; callbacks of the old one are ignored', () => {
    const h = harness();
    h.rs.start();
    h.rs.restart();
    expect(h.streams).toHaveLength(2);
    expect(h.streams[0]!.cancelled).toBe(true);
    h.streams[0]!.cb.onMessage('stale');
    h.streams[0]!.cb.onClose(new Error('cancelled'));
    expect(h.got).toEqual([]);
    expect(h.timers.pending).toHaveLength(0);
    h.streams[1]!.cb.onMessage('fresh');
    expect(h.got).toEqual(['fresh']);
  });

  test('an open that throws is retried; stop cancels everything', () => {
    const h = harness();
    let fail = true;
    const rs = new ReconnectingStream<string>({
      open: (cb) => {
        if (fail) throw new Error('no channel');
        h.streams.push({ cb, cancelled: false });
        return { cancel: () => {} };
      },
      onMessage: () => {},
      timers: h.timers,
      backoff: { initialMs: 100, maxMs: 1_000, jitter: 0 },
    });
    rs.start();
    expect(h.timers.pending).toHaveLength(1);
    fail = false;
    h.timers.fire();
    expect(rs.connected).toBe(true);
    rs.stop();
    expect(rs.connected).toBe(false);
    h.streams[0]!.cb.onClose(new Error('late'));
    expect(h.timers.pending).toHaveLength(0);
  });
});
