// The keys two parsed configs differ in, as the config-file watchers name them: top-level for the control plane
// (which restarts to apply any), dotted leaves for the injector (which applies each at the next admission).
import { describe, expect, test } from 'vitest';
import { changedKeys } from '../../../../common/config/changed-keys.js';

describe('changedKeys', () => {
  const before = { listen: '0.0.0.0:8443', svid: { ttl: 3_600_000, maxTtl: 86_400_000 }, file: '/a.yaml', sizes: [1, 2], big: 10n };
  test('top level: the keys whose value changed, sorted, ignored ones left out', () => {
    const after = { ...before, svid: { ttl: 1_800_000, maxTtl: 86_400_000 }, listen: '0.0.0.0:9443', file: '/b.yaml' };
    expect(changedKeys(before, after, { nested: false, ignore: ['file'] })).toEqual(['listen', 'svid']);
  });

  test('nested: dotted leaves; arrays and bigints compared whole by value', () => {
    const after = { ...before, svid: { ttl: 1_800_000, maxTtl: 86_400_000 }, sizes: [1, 3], big: 11n };
    expect(changedKeys(before, after, { nested: true })).toEqual(['big', 'sizes', 'svid.ttl']);
  });

  test('a key added or removed differs; one undefined on one side and absent on the other does not', () => {
    expect(changedKeys({ a: 1 }, { a: 1, b: 2 }, { nested: true })).toEqual(['b']);
    expect(changedKeys({ a: 1, b: { c: 2 } }, { a: 1 }, { nested: true })).toEqual(['b.c']);
    expect(changedKeys({ a: 1, b: undefined }, { a: 1 }, { nested: false })).toEqual([]);
    expect(changedKeys(before, structuredClone(before), { nested: true })).toEqual([]);
  });
});
