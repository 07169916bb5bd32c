// Readiness as named conditions: not ready while starting and while shutting down, whatever the conditions say;
// while serving, the first failing condition's reason (an expired own SVID), else ready.

import { describe, expect, test } from 'vitest';
import { ownSvidLive, PhasedReadiness } from '../../../../control-plane/src/admin/readiness.js';
import { FakeTime } from '../../../helpers/fake-time.js';

describe('Readiness', () => {
  test('starting → serving (conditions decide) → shutting down', () => {
    const time = new FakeTime();
    const svid = { notAfterMs: time.nowMs() + 60_000 };
    const r = new PhasedReadiness([ownSvidLive(() => svid, time)]);
    expect(r.notReadyReason()).toBe('starting');
    r.serving();
    expect(r.notReadyReason()).toBeUndefined();
    time.advance(60_000);
    expect(r.notReadyReason()).toBe('the control plane SVID has expired');
    r.closing();
    expect(r.notReadyReason()).toBe('shutting down');
    r.serving(); // a late serving() does not undo the close
    expect(r.notReadyReason()).toBe('shutting down');
  });

  test('no SVID at all is not ready; the first failing condition names the reason', () => {
    const time = new FakeTime();
    const r = new PhasedReadiness([{ name: 'store', check: () => undefined }, ownSvidLive(() => undefined, time), { name: 'later', check: () => 'later' }]);
    r.serving();
    expect(r.notReadyReason()).toBe('the control plane SVID has expired');
  });
});
