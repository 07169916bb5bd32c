// The endpoint sources' first sync (audit 53c F2): not synced until every awaited source reported, or the deadline
// passed (logged); waiters run once, at that moment; no wait at all without sources or with a 0 deadline.
import { describe, expect, test } from 'vitest';
import { SourceSync } from '../../../../control-plane/src/discovery/source-sync.js';
import { FakeTime } from '../../../helpers/fake-time.js';

function make(pending: string[], deadlineMs = 30_000) {
  const time = new FakeTime();
  const warned: string[] = [];
  const sync = new SourceSync({ pending, deadlineMs, timers: time, log: { info: () => {}, warn: (_o: unknown, msg: string) => void warned.push(msg) } as never });
  return { time, warned, sync };
}

describe('SourceSync', () => {
  test('waits for the awaited source: not ready with a reason, waiters run once when it reports, no deadline log after', () => {
    const { time, warned, sync } = make(['kubernetes']);
    let ran = 0;
    sync.whenSynced(() => ran++);
    expect(sync.synced).toBe(false);
    expect(sync.notReadyReason()).toMatch(/^endpoint source kubernetes has not synced yet .* up to 30 s$/);
    sync.reported('static'); // not awaited
    expect(ran).toBe(0);
    sync.reported('kubernetes');
    expect([ran, sync.synced, sync.notReadyReason()]).toEqual([1, true, undefined]);
    sync.reported('kubernetes');
    time.advance(60_000);
    expect([ran, warned]).toEqual([1, []]);
    sync.whenSynced(() => ran++); // already synced: at once
    expect(ran).toBe(2);
  });

  test('bounded: at the deadline the waiters run and the log says so; a later report changes nothing', () => {
    const { time, warned, sync } = make(['kubernetes'], 1_000);
    let ran = 0;
    sync.whenSynced(() => ran++);
    time.advance(999);
    expect(ran).toBe(0);
    time.advance(1);
    expect([ran, sync.synced, sync.notReadyReason()]).toEqual([1, true, undefined]);
    expect(warned).toEqual([expect.stringMatching(/not synced by the deadline/)]);
    sync.reported('kubernetes');
    expect(ran).toBe(1);
  });

  test('nothing awaited, or a 0 deadline: synced from the start', () => {
    expect(make([]).sync.synced).toBe(true);
    expect(make(['kubernetes'], 0).sync.synced).toBe(true);
  });

  test('stop() drops the deadline and the waiters', () => {
    const { time, warned, sync } = make(['kubernetes'], 1_000);
    let ran = 0;
    sync.whenSynced(() => ran++);
    sync.stop();
    time.advance(5_000);
    expect([ran, warned]).toEqual([0, []]);
  });
});
