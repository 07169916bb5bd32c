// SessionSet on real loopback sockets: connections counted until they close in any order (the array's swap
// removal), idle() once all are gone, the sweep expiring sessions past their deadline even when one closes another
// while it runs, the drain, peers named before or after a connection is tracked, and closePeers cutting each once; a
// TCP tunnel counted until its record is written; peers that no longer stand drained once each, at the sweep and
// at drainLapsed(), tunnels left to end.
import * as net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { type ConnectionPeer, type Expirable, SessionSet } from '../../../../proxy/src/listeners/session-set.js';
import { until } from '../../../helpers/until.js';
import { realTimers } from '../../../../shared-io/timers.js';
import { FakeTime } from '../../../helpers/fake-time.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** `n` connected pairs: the accepted (server-side) sockets, which the set tracks, and their clients. */
async function pairs(n: number): Promise<{ accepted: net.Socket[]; clients: net.Socket[] }> {
  const accepted: net.Socket[] = [];
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    accepted.push(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const clients: net.Socket[] = [];
  for (let i = 0; i < n; i++) {
    const c = net.connect({ port, host: '127.0.0.1' });
    c.on('error', () => undefined);
    clients.push(c);
  }
  await until('all accepted', () => accepted.length === n, 5_000, 10);
  cleanups.push(() => {
    for (const s of [...accepted, ...clients]) s.destroy();
    server.close();
  });
  return { accepted, clients };
}

class Session implements Expirable {
  deadlineMs: number;
  closed = false;
  expired = 0;
  drained = 0;
  constructor(
    deadlineMs: number,
    readonly onExpire: () => void = () => undefined,
  ) {
    this.deadlineMs = deadlineMs;
  }
  expire(): void {
    this.expired++;
    this.onExpire();
  }
  drain(): void {
    this.drained++;
  }
}

const peer = (id: string, notAfterMs = Number.POSITIVE_INFINITY): ConnectionPeer => ({ idText: id, serial: '01', notAfterMs, trustDomain: 'example.org', anchor: 'AA' });

describe('SessionSet', () => {
  test('counts connections until each closes, in any order, and idle() resolves once none is left', async () => {
    let now = 0;
    const set = new SessionSet({ nowMs: () => now, timers: realTimers }, () => false);
    const { accepted } = await pairs(7);
    const sessions = accepted.slice(0, 6).map((s, i) => {
      const session = new Session(1_000 + i);
      set.add(s, session);
      return session;
    });
    set.addSocket(accepted[6]!);
    expect(set.size).toBe(7);
    // One at a time: the last one moves into the first's place, then it leaves too, then one from the middle.
    for (const i of [0, 6, 3]) {
      const size = set.size;
      accepted[i]!.destroy();
      await until(`connection ${i} gone`, () => set.size === size - 1, 5_000, 10);
    }
    // The sweep sees exactly the sessions left (a swap removal must not lose, keep or repeat one).
    now = 10_000;
    set.sweep();
    expect(sessions.map((s) => s.expired)).toEqual([0, 1, 1, 0, 1, 1]);
    const idle = set.idle();
    for (const i of [1, 2, 4, 5]) accepted[i]!.destroy();
    await idle;
    expect(set.size).toBe(0);
  });

  test('the sweep expires every session past its deadline, also when expiring one closes another meanwhile', async () => {
    let now = 0;
    const set = new SessionSet({ nowMs: () => now, timers: realTimers }, () => false);
    const { accepted } = await pairs(4);
    const sessions: Session[] = [];
    for (const [i, s] of accepted.entries()) {
      // The first one's expiry destroys the last connection synchronously, as a cut can.
      const session = new Session(100 + i, i === 0 ? () => accepted[3]!.destroy() : () => undefined);
      sessions.push(session);
      set.add(s, session);
    }
    now = 103; // past the first three deadlines only
    set.sweep();
    expect(sessions.map((s) => s.expired)).toEqual([1, 1, 1, 0]);
    await until('the destroyed one is gone', () => set.size === 3, 5_000, 10);
  });

  test('drain drains every tracked session, and one added while draining at once', async () => {
    const set = new SessionSet({ nowMs: () => 0, timers: realTimers }, () => false);
    const { accepted } = await pairs(3);
    const a = new Session(0);
    const b = new Session(0);
    set.add(accepted[0]!, a);
    set.add(accepted[1]!, b);
    set.drain();
    const late = new Session(0);
    set.add(accepted[2]!, late);
    expect([a.drained, b.drained, late.drained]).toEqual([1, 1, 1]);
  });

  test('a peer named before its connection is tracked (HTTP/2 admits first) or after; closePeers cuts each match once', async () => {
    const set = new SessionSet({ nowMs: () => 0, timers: realTimers }, () => false);
    const { accepted, clients } = await pairs(3);
    set.setPeer(accepted[0]!, peer('banned'));
    set.add(accepted[0]!, new Session(0)); // the same connection: one entry, counted once
    set.addSocket(accepted[1]!);
    set.setPeer(accepted[1]!, peer('banned'));
    set.addSocket(accepted[2]!);
    set.setPeer(accepted[2]!, peer('fine'));
    expect(set.size).toBe(3);
    const clientClosed = clients.map((c) => new Promise<void>((r) => c.once('close', () => r())));
    expect(set.closePeers((p) => p.idText === 'banned')).toBe(2);
    // Cut already: a second pass before their close events finds nothing to cut.
    expect(set.closePeers((p) => p.idText === 'banned')).toBe(0);
    await Promise.all(clientClosed.slice(0, 2));
    await until('the two are gone', () => set.size === 1, 5_000, 10);
    expect(accepted[2]!.destroyed).toBe(false);
  });

  test('a connection named only by its peer is not counted, and closes out of the set', async () => {
    const set = new SessionSet({ nowMs: () => 0, timers: realTimers }, () => false);
    const { accepted } = await pairs(2);
    set.setPeer(accepted[0]!, peer('a'));
    set.addSocket(accepted[1]!);
    expect(set.size).toBe(1);
    const peerOnlyClosed = new Promise<void>((r) => accepted[0]!.once('close', () => r()));
    accepted[0]!.destroy();
    accepted[1]!.destroy();
    await set.idle();
    await peerOnlyClosed;
    expect(set.closePeers(() => true)).toBe(0);
  });

  test('the sweep runs only while a connection is open on either side, and starts again with the next one', async () => {
    let upstreamHolds = false;
    let upstreamSweeps = 0;
    const time = new FakeTime();
    const set = new SessionSet(
      { nowMs: () => time.nowMs(), timers: time },
      () => {
        upstreamSweeps++;
        return upstreamHolds;
      },
    );
    cleanups.push(() => set.destroyAll());
    expect(set.sweeping).toBe(false);
    set.start();
    expect(set.sweeping).toBe(true);
    // Nothing open on either side: the first sweep stops the timer (an idle sidecar's loop sleeps).
    set.sweep();
    expect(upstreamSweeps).toBe(1);
    expect(set.sweeping).toBe(false);

    const { accepted } = await pairs(1);
    set.addSocket(accepted[0]!);
    expect(set.sweeping).toBe(true);
    // The client side closes while the upstream pool still holds a connection: the pool is still swept.
    upstreamHolds = true;
    accepted[0]!.destroy();
    await until('the connection is gone', () => set.size === 0, 5_000, 10);
    set.sweep();
    expect(set.sweeping).toBe(true);
    // The pool let its last connection go: the 1 s interval's next sweep stops it (injected timers: nothing waits).
    upstreamHolds = false;
    const before = upstreamSweeps;
    expect(time.pending).toBe(1);
    time.advance(999);
    expect(upstreamSweeps).toBe(before);
    time.advance(1);
    expect(upstreamSweeps).toBe(before + 1);
    expect(set.sweeping).toBe(false);
    expect(time.pending).toBe(0);
  });

  test('a TCP tunnel counts until its record is written, after its connection closed; destroyAll waits for those records (audit 38a F2)', async () => {
    const set = new SessionSet({ nowMs: () => 0, timers: realTimers }, () => false);
    const { accepted } = await pairs(3);
    const closed = accepted.map((s) => new Promise<void>((r) => s.once('close', () => r())));
    const recorded = accepted.slice(0, 2).map((s) => {
      set.addSocket(s);
      return set.tunnel(s);
    });
    set.addSocket(accepted[2]!); // a connection that is no tunnel: gone at its close
    // Closed, not yet recorded (relay() records once both legs have closed): still open for the drain.
    accepted[0]!.destroy();
    await closed[0];
    expect(set.size).toBe(3);
    recorded[0]!();
    recorded[0]!(); // once only
    expect(set.size).toBe(2);
    // One closed just before the drain deadline, its record still to come (its upstream leg not closed yet), and one
    // open: destroyAll resolves only once both have closed and the tunnel's record is written.
    accepted[1]!.destroy();
    await closed[1];
    let settled = false;
    const all = set.destroyAll().then(() => (settled = true));
    await closed[2];
    await new Promise((r) => setImmediate(r)); // whatever the closes set off has run
    expect(settled).toBe(false);
    recorded[1]!();
    await all;
    expect(set.size).toBe(0);
    await set.idle();
  });

  test('destroyAll cuts every tracked connection', async () => {
    const set = new SessionSet({ nowMs: () => 0, timers: realTimers }, () => false);
    const { accepted, clients } = await pairs(3);
    for (const s of accepted) set.addSocket(s);
    const closed = clients.map((c) => new Promise<void>((r) => c.once('close', () => r())));
    set.destroyAll();
    expect(set.size).toBe(0);
    await Promise.all(closed);
    await set.idle();
  });

  test('peers that no longer stand: their HTTP sessions drained once each (sweep and drainLapsed), tunnels left', async () => {
    let now = 1_000;
    const set = new SessionSet({ nowMs: () => now, timers: realTimers }, () => false);
    const untrusted = new Set<string>();
    const drained: [string, number][] = [];
    set.watchPeers((p, nowMs) => (nowMs >= p.notAfterMs ? 'peer_expired' : untrusted.has(p.idText) ? 'peer_untrusted' : null), (r, n) => drained.push([r, n]));
    const { accepted } = await pairs(4);
    const soon = new Session(Number.POSITIVE_INFINITY);
    const later = new Session(Number.POSITIVE_INFINITY);
    const other = new Session(Number.POSITIVE_INFINITY);
    set.add(accepted[0]!, soon);
    set.setPeer(accepted[0]!, peer('soon', 2_000));
    set.add(accepted[1]!, later);
    set.setPeer(accepted[1]!, peer('later', 5_000));
    set.add(accepted[2]!, other);
    set.setPeer(accepted[2]!, peer('other'));
    set.addSocket(accepted[3]!); // a TCP tunnel: one exchange in flight, never drained
    set.setPeer(accepted[3]!, peer('tunnel', 2_000));
    set.sweep();
    expect([soon.drained, later.drained, other.drained]).toEqual([0, 0, 0]);
    now = 2_000;
    set.sweep();
    set.sweep(); // judged once: a drained session is not drained (nor counted) again
    expect([soon.drained, later.drained, other.drained]).toEqual([1, 0, 0]);
    untrusted.add('other');
    set.drainLapsed(); // a new bundle: judged at once, not at the next sweep
    expect([soon.drained, later.drained, other.drained]).toEqual([1, 0, 1]);
    expect(drained).toEqual([['peer_expired', 1], ['peer_untrusted', 1]]);
    expect(accepted[3]!.destroyed).toBe(false);
    expect(set.size).toBe(4);
  });

  test('a multiplexed stream named by its peer: drained at once (drainNow) with it, never counted, never cut alone', async () => {
    const set = new SessionSet({ nowMs: () => 5_000, timers: realTimers }, () => false);
    const drained: [string, number][] = [];
    set.watchPeers((p, nowMs) => (nowMs >= p.notAfterMs ? 'peer_expired' : null), (r, n) => drained.push([r, n]));
    const { accepted } = await pairs(2);
    const conn = new Session(Number.POSITIVE_INFINITY);
    let waited = 0;
    let now = 0;
    const stream: Expirable = { deadlineMs: Number.POSITIVE_INFINITY, closed: false, expire: () => undefined, drain: () => waited++, drainNow: () => now++ };
    set.add(accepted[0]!, conn);
    set.setPeer(accepted[0]!, peer('gone', 1_000));
    set.add(accepted[1]!, stream);
    set.setPeer(accepted[1]!, peer('gone', 1_000), true);
    set.drainLapsed();
    expect({ conn: conn.drained, waited, now }).toEqual({ conn: 1, waited: 0, now: 1 });
    expect(drained).toEqual([['peer_expired', 1]]);
    expect(set.closePeers((p) => p.idText === 'gone')).toBe(1); // the connection; its streams go with it
    expect(accepted[1]!.destroyed).toBe(false);
  });
});
