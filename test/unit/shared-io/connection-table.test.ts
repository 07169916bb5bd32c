// The webhook's connection cap (audit 5, N1): when full, a newcomer is admitted and the connection least likely to
// be the API server's is closed for it: one that has asked nothing (in its TLS handshake, or handshaken with no
// request since) for longer than the new-connection grace, oldest first; else the idle one (after a request) idle
// longest; else a young one that has asked nothing yet, oldest first; else the oldest request in progress past its
// grace; the newcomer is refused only when every connection is a young request.
import { describe, expect, test } from 'vitest';
import { type ConnectionState, ConnectionTable, NEW_CONNECTION_GRACE_MS } from '../../../shared-io/connection-table.js';
import { FakeTime } from '../../helpers/fake-time.js';

function setup(max = 3, busyGraceMs = 1_000) {
  const time = new FakeTime();
  const table = new ConnectionTable({ max, busyGraceMs, clock: time });
  const closed: string[] = [];
  const evicted: ConnectionState[] = [];
  const open = (name: string) => {
    const t = table.admit(
      () => {
        closed.push(name);
      },
      (s) => evicted.push(s),
    );
    time.advance(10);
    return t;
  };
  return { time, table, closed, evicted, open };
}

describe('ConnectionTable', () => {
  test('below the cap every connection is admitted and nothing is closed', () => {
    const { table, open, closed } = setup();
    for (const n of ['a', 'b', 'c']) expect(open(n)).not.toBeNull();
    expect(table.size).toBe(3);
    expect(closed).toEqual([]);
  });

  test('full: a connection still in its handshake past the grace is closed first, even before idle ones (after a request); a young one after them', () => {
    const { open, closed, evicted, time } = setup();
    const a = open('a')!;
    a.secured();
    a.busy();
    a.idle();
    open('b');
    time.advance(NEW_CONNECTION_GRACE_MS);
    open('c');
    expect(open('d')).not.toBeNull();
    expect(closed).toEqual(['b']);
    expect(evicted).toEqual(['handshake']);
    // c and d are young: the keep-alive one goes before them.
    expect(open('e')).not.toBeNull();
    expect(closed).toEqual(['b', 'a']);
    expect(evicted).toEqual(['handshake', 'idle']);
  });

  test('past the grace, a handshake and a connection handshaken that asked nothing since go by age; young ones by age after', () => {
    const { open, closed, evicted, time } = setup();
    open('a')!.secured(); // idle, nothing asked, came at 0
    time.advance(5);
    open('b'); // in its handshake, came at 15
    time.advance(NEW_CONNECTION_GRACE_MS);
    open('c')!.secured(); // young
    expect(open('d')).not.toBeNull();
    expect(closed).toEqual(['a']);
    expect(evicted).toEqual(['idle']);
    expect(open('e')).not.toBeNull();
    expect(closed).toEqual(['a', 'b']);
    expect(open('f')).not.toBeNull();
    expect(closed).toEqual(['a', 'b', 'c']);
  });

  // Audit 61h F1: with every connection that had asked nothing closed first, a flood that asks once on each
  // connection and then sits idle, reopened as fast as it is closed, closed the real client (the only one that had
  // asked nothing yet) every time: 60 % of an admin listener's probes failed.
  test('a real client is not closed for a flood of connections that asked once and sit idle, reopened as they are closed', () => {
    const { open, closed, table } = setup(50);
    const flood = (i: number) => {
      const t = open(`flood-${i}`)!;
      t.secured();
      t.busy();
      t.idle();
    };
    for (let i = 0; i < 50; i++) flood(i);
    const real = open('real')!;
    real.secured();
    for (let i = 50; i < 90; i++) flood(i);
    expect(closed).not.toContain('real');
    real.busy();
    for (let i = 90; i < 200; i++) flood(i);
    expect(closed).not.toContain('real');
    expect(table.size).toBe(50);
  });

  // Audit 61e F1: every handshake went before any idle connection, so a real client still in its handshake, the
  // oldest one there, was closed for a flood of connections that finished their handshakes at once, asked nothing,
  // and were reopened as fast as they were closed (25-40 % of the webhook's reviews failed).
  test('a real client in its handshake survives a flood of idle connections reopened as they are closed', () => {
    const { open, closed, time, table } = setup(50);
    const flood = (i: number) => {
      open(`flood-${i}`)!.secured();
    };
    for (let i = 0; i < 50; i++) flood(i);
    const real = open('real')!;
    // While its handshake runs, 40 more flood connections come (each handshaken at once): fewer than the cap, so
    // each finds an older one that asked nothing to close.
    for (let i = 50; i < 90; i++) flood(i);
    expect(closed).toHaveLength(41);
    expect(closed).not.toContain('real');
    real.secured();
    real.busy();
    time.advance(500);
    for (let i = 90; i < 400; i++) flood(i);
    expect(closed).not.toContain('real');
    expect(table.size).toBe(50);
  });

  test('no handshakes: the oldest idle one (since it last finished a request), never a young request', () => {
    const { open, closed, time } = setup();
    const a = open('a')!;
    const b = open('b')!;
    const c = open('c')!;
    a.secured();
    b.secured();
    c.secured();
    b.busy();
    b.idle();
    a.busy();
    time.advance(10);
    a.idle(); // a finished a request after b did: b is the older idle one
    c.busy();
    expect(open('d')).not.toBeNull();
    expect(closed).toEqual(['b']);
  });

  test('only requests in progress: the oldest past the grace is closed; all younger: the newcomer is refused', () => {
    const { open, closed, time, table } = setup(2, 1_000);
    const a = open('a')!;
    const b = open('b')!;
    a.secured();
    a.busy();
    b.secured();
    b.busy();
    expect(open('c')).toBeNull();
    expect(closed).toEqual([]);
    time.advance(1_000);
    expect(open('d')).not.toBeNull();
    expect(closed).toEqual(['a']);
    expect(table.size).toBe(2);
  });

  test('a closed connection frees its place, and a flood of handshakes past the grace never closes an idle (after a request) or busy one', () => {
    const { open, closed, table, time } = setup(3);
    const api = open('api')!;
    api.secured();
    api.busy();
    const idle = open('idle')!;
    idle.secured();
    idle.busy();
    idle.idle();
    for (let i = 0; i < 50; i++) {
      open(`flood-${i}`);
      time.advance(NEW_CONNECTION_GRACE_MS);
    }
    expect(closed.every((n) => n.startsWith('flood-'))).toBe(true);
    expect(api.state).toBe('busy');
    idle.closed();
    idle.closed();
    expect(table.size).toBe(2);
  });
});
