// The file watcher's poll on injected time: while fs.watch covers the directory the poll runs ARMED_POLL_FACTOR
// times less often (an idle process wakes less), while the directory is missing it polls at pollMs and re-arms.
// The tests are synchronous, so no fs.watch event can arrive: only the poll can see a change.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { ARMED_POLL_FACTOR, watchPaths } from '../../../shared-io/file-watch.js';
import { FakeTime } from '../../helpers/fake-time.js';
import { tempDirPerTest } from '../../helpers/temp-dir.js';

describe('watchPaths poll', () => {
  const tmp = tempDirPerTest();

  test('with the directory watched, a change is polled at pollMs × ARMED_POLL_FACTOR, not at pollMs', () => {
    const file = join(tmp.dir, 'cert.pem');
    writeFileSync(file, 'one');
    const time = new FakeTime();
    let changes = 0;
    const watch = watchPaths({ paths: [file], onChange: () => changes++, pollMs: 1_000, timers: time });
    try {
      writeFileSync(file, 'two, longer');
      time.advance(1_100);
      expect(changes).toBe(0);
      time.advance(1_000 * ARMED_POLL_FACTOR - 1_100);
      expect(changes).toBe(1);
      // One poll pending at a time, and none once closed.
      expect(time.pending).toBe(1);
    } finally {
      watch.close();
    }
    expect(time.pending).toBe(0);
  });

  test('a missing directory is polled at pollMs until it appears; then it is watched and polled less often', () => {
    const dir = join(tmp.dir, 'not-yet');
    const file = join(dir, 'cert.pem');
    const time = new FakeTime();
    let changes = 0;
    const watch = watchPaths({ paths: [file], onChange: () => changes++, pollMs: 1_000, timers: time });
    try {
      mkdirSync(dir);
      writeFileSync(file, 'one');
      time.advance(1_000);
      expect(changes).toBe(1);
      writeFileSync(file, 'two, longer');
      time.advance(1_000);
      expect(changes).toBe(1);
      time.advance(1_000 * ARMED_POLL_FACTOR);
      expect(changes).toBe(2);
    } finally {
      watch.close();
    }
  });
});
