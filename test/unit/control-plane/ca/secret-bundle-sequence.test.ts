// spiffe_sequence on a read-only CA (audit 62d F1): read from the Secret's certificates the bundle's keys come from,
// so every replica serves the same number and a rolled-out CA change raises it. A root-key authority's
// intermediates, which each replica mints itself, are not among them; an offline root's, from the Secret, are.
import { expect, test } from 'vitest';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { type CertWithKey, createIntermediate, createRoot, type LoadedAuthority } from '../../../../control-plane/src/ca/authority.js';
import { secretBundleSequence } from '../../../../control-plane/src/ca/bundle-sequence.js';

const TD = TrustDomain.parse('example.org');
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 10, 1);

function authority(id: string, root: CertWithKey, intermediates: CertWithKey[], offline: boolean): LoadedAuthority {
  return {
    record: { id, state: 'active', createdAtMs: root.cert.validFromDate.getTime(), rootCertFile: `${id}-root.crt`, rootNotAfterMs: root.cert.validToDate.getTime(), intermediates: [] },
    root: { cert: root.cert, key: offline ? null : root.key },
    intermediates,
  };
}

const view = (authorities: LoadedAuthority[], removed: { id: string; removedAtMs: number }[] = []) => ({ current: () => ({ authorities }), removedHistory: () => removed });

test('the newest NotBefore of the roots and of offline roots\' intermediates, in seconds; intermediates minted under a root key do not count', async () => {
  const root = await createRoot(TD, 'aaaa', T0, 365 * DAY);
  const seconds = (c: CertWithKey) => Math.floor(c.cert.validFromDate.getTime() / 1000);
  // A replica's own intermediate, minted days later: the number is the root's on every replica.
  const minted = await createIntermediate(TD, 'aaaa', root, T0 + 5 * DAY, 30 * DAY);
  expect(await secretBundleSequence(view([authority('aaaa', root, [minted], false)]))()).toBe(seconds(root));
  // An offline root (a plug-in Secret): its intermediate comes from the Secret, and a renewed one raises the number.
  const renewed = await createIntermediate(TD, 'aaaa', root, T0 + 9 * DAY, 30 * DAY);
  expect(await secretBundleSequence(view([authority('aaaa', root, [minted], true)]))()).toBe(seconds(minted));
  expect(await secretBundleSequence(view([authority('aaaa', root, [minted, renewed], true)]))()).toBe(seconds(renewed));
  // A new authority rolled out beside the first raises it too.
  const next = await createRoot(TD, 'bbbb', T0 + 20 * DAY, 365 * DAY);
  expect(await secretBundleSequence(view([authority('aaaa', root, [minted], false), authority('bbbb', next, [], false)]))()).toBe(seconds(next));
});

// Audit 62h F5: an authority removed kept the number, and a replayed older document brought its root back at a peer.
test('a removal recorded in ca-state.json raises it past the certificates\' NotBefore', async () => {
  const root = await createRoot(TD, 'aaaa', T0, 365 * DAY);
  const seconds = Math.floor(root.cert.validFromDate.getTime() / 1000);
  expect(await secretBundleSequence(view([authority('aaaa', root, [], false)], []))()).toBe(seconds);
  expect(await secretBundleSequence(view([authority('aaaa', root, [], false)], [{ id: 'zzzz', removedAtMs: T0 + 3 * DAY + 500 }]))()).toBe(Math.floor((T0 + 3 * DAY) / 1000));
});

// Audit 62k F3: a root's NotBefore is backdated a minute, so an authority prepared within a minute of a removal kept
// the removal's number, with other keys.
test('an authority created after a removal raises it, though its root is backdated', async () => {
  const first = await createRoot(TD, 'aaaa', T0, 365 * DAY);
  const removedAtMs = T0 + DAY;
  const next = await createRoot(TD, 'bbbb', removedAtMs + 10_000, 365 * DAY); // NotBefore 50 s before the removal
  const created = { ...authority('bbbb', next, [], false), record: { ...authority('bbbb', next, [], false).record, createdAtMs: removedAtMs + 10_000 } };
  const before = await secretBundleSequence(view([authority('aaaa', first, [], false)], [{ id: 'zzzz', removedAtMs }]))();
  const after = await secretBundleSequence(view([authority('aaaa', first, [], false), created], [{ id: 'zzzz', removedAtMs }]))();
  expect(after).toBeGreaterThan(before);
});
