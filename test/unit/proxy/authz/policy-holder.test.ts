// PolicyHolder.subscribe (review 27c F12): every listener runs after each new snapshot, from setPolicies and
// setSnapshot alike, with the snapshot now in force; a second subscriber does not replace the first, and an
// unsubscribed one runs no more.
import { expect, test } from 'vitest';
import { PolicySnapshot } from '../../../../common/policy/policy-snapshot.js';
import { PolicyHolder } from '../../../../proxy/src/authz/policy-holder.js';

test('subscribers see every new snapshot until they unsubscribe', () => {
  const holder = new PolicyHolder('deny');
  const first: string[] = [];
  const second: string[] = [];
  holder.subscribe((s) => void first.push(s.version));
  const stop = holder.subscribe((s) => {
    expect(holder.current).toBe(s);
    second.push(s.version);
  });
  holder.setPolicies([], [], 'v1');
  holder.setSnapshot(PolicySnapshot.create([], { defaultAction: 'allow', version: 'v2' }));
  stop();
  holder.setPolicies([], [], 'v3');
  expect(first).toEqual(['v1', 'v2', 'v3']);
  expect(second).toEqual(['v1', 'v2']);
  expect(holder.loaded).toBe(true);
});
