// The webhook's connection cap (audit 5, N1): when full, a newcomer is admitted and the connection least likely to
// be the API server's is closed for it: the oldest still in its TLS handshake, else the oldest idle one, else the
// oldest request in progress past the grace; the newcomer is refused only when every connection is a young request.
import { describe, expect, test } from 'vitest';
import { ConnectionTable, type ConnectionState } from '../../../shared-io/connection-table.js';
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

  test('full: the oldest connection still in its handshake is closed first, even when idle ones are older', () => {
    const { open, closed, evicted } = setup();
    open('a')!.secured();
    open('b');
    open('c');
    expect(open('d')).not.toBeNull();
    expect(closed).toEqual(['b']);
    expect(evicted).toEqual(['handshake']);
  });

  test('no handshakes: the oldest idle one (since it last finished a request), never a young request', () => {
    const { open, closed, time } = setup();
    const a = open('a')!;
    const b = open('b')!;
    const c = open('c')!;
    a.secured();
    b.secured();
    c.secured();
    a.busy();
    time.advance(10);
    a.idle(); // a finished a request after b became idle: b is the older idle one
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

  test('a closed connection frees its place, and a flood of handshakes never closes an idle or busy one', () => {
    const { open, closed, table } = setup(3);
    const api = open('api')!;
    api.secured();
    api.busy();
    const idle = open('idle')!;
    idle.secured();
    for (let i = 0; i < 50; i++) open(`flood-${i}`);
    expect(closed.every((n) => n.startsWith('flood-'))).toBe(true);
    expect(api.state).toBe('busy');
    idle.closed();
    idle.closed();
    expect(table.size).toBe(2);
  });
});
