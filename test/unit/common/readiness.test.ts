// Readiness as named conditions: ready only when every condition is met (undefined), the reason the first unmet
// condition's in registration order, re-read on every ask.
import { describe, expect, test } from 'vitest';
import { Latch, Readiness } from '../../../common/readiness.js';

describe('Readiness', () => {
  test('the first unmet condition in registration order gives the reason; all met is ready', () => {
    const up = new Latch();
    let policies: string | undefined = 'waiting for policies';
    const r = new Readiness()
      .add('listeners', () => (up.isSet ? undefined : 'listeners starting'))
      .add('policies', () => policies);
    expect(r.names).toEqual(['listeners', 'policies']);
    expect(r.state()).toEqual({ ready: false, reason: 'listeners starting' });
    up.set();
    expect(r.notReadyReason()).toBe('waiting for policies');
    policies = undefined;
    expect(r.state()).toEqual({ ready: true });
    expect(r.notReadyReason()).toBeUndefined();
  });

  test('an empty reason is still a reason: only undefined means met', () => {
    const r = new Readiness().add('odd', () => '');
    expect(r.state()).toEqual({ ready: false, reason: '' });
  });

  test('no conditions: ready', () => {
    expect(new Readiness().state()).toEqual({ ready: true });
  });
});
