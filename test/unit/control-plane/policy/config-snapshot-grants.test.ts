// Break-glass grants in Config/Watch snapshots: a grant stored before BreakGlass refused patterns over 2048 bytes
// (SPIFFE-ID §2.3) is served without them, so the proxy, which refuses such patterns, still compiles the snapshot.
import { expect, test } from 'vitest';
import type { ConfigSnapshotMsg } from '../../../../common/contract/config-v1.js';
import type { BreakGlassGrant } from '../../../../common/policy/policy-types.js';
import { SpiffeId } from '../../../../common/spiffe/spiffe-id.js';
import { buildSnapshot } from '../../../../control-plane/src/policy/config-snapshot.js';
import { policySnapshotFromWatch } from '../../../../proxy/src/authz/control-plane-policy-source.js';

const API = 'spiffe://example.org/ns/default/sa/api';
const OPS = 'spiffe://example.org/ns/ops/sa/oncall';
const LONG = `spiffe://example.org/${'a'.repeat(2049 - 21)}`;
const grant = (id: string, to: string, from: string[]): BreakGlassGrant => ({ id, to, from, expiresAtMs: 10_000, reason: 'r' });

test('patterns no ID can match are left out of the grants sent; the rest still apply', () => {
  const grants = [grant('bg-long-to', LONG, [OPS]), grant('bg-mixed', API, [LONG, OPS]), grant('bg-only-long', API, [LONG]), grant('bg-ok', API, [OPS])];
  const built = buildSnapshot({ version: 1, bundles: [], policies: [], grants, denyList: { spiffeIds: [], serials: [] } }, SpiffeId.parse(API), 1_000);
  expect(built.message.break_glass.map((g) => [g.id, g.from])).toEqual([
    ['bg-mixed', [OPS]],
    ['bg-ok', [OPS]],
  ]);
  const snapshot = policySnapshotFromWatch(built.message as unknown as ConfigSnapshotMsg);
  expect(snapshot.breakGlass.map((g) => [g.id, g.from])).toEqual([['bg-mixed', [OPS]], ['bg-ok', [OPS]]]);
});
