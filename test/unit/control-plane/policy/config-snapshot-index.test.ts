// The indexed snapshot build (audit 40a: policies prepared once per version and looked up by selector, grants by
// `to`) gives every caller exactly what the full scan of every policy and grant gave it before: the same policies in
// the same order (exact IDs, "*" segments, "**" tails, trust-domain-wide and bare-domain selectors, ALLOW and DENY,
// enforce and audit, repeated names), the same grants (expired and unusable ones left out), the same deny-list and
// bundles; content keys equal exactly when the old ones were; and the encoding spliced from shared pieces is the
// bytes the wire's encoder gives for the whole message. Randomized over seeded policy sets and IDs.
import { describe, expect, test } from 'vitest';
import type { ConfigSnapshotMsg } from '../../../../common/contract/config-v1.js';
import type { AuthorizationPolicy, BreakGlassGrant, PolicyRule } from '../../../../common/policy/policy-types.js';
import { SpiffeId } from '../../../../common/spiffe/spiffe-id.js';
import { TrustBundle } from '../../../../common/spiffe/trust-bundle.js';
import { carriedEncoding } from '../../../../control-plane/src/api/shared-encoding.js';
import { type SnapshotInputs, SnapshotParts } from '../../../../control-plane/src/policy/config-snapshot.js';
import { loadTesseraServices } from '../../../../shared-io/proto-loader.js';
import { fullScanSnapshot } from '../../../helpers/full-scan-snapshot.js';
import { seededRandom } from '../../../helpers/seeded-random.js';
import { TestCa } from '../../../helpers/test-ca.js';

const TDS = ['example.org', 'other.org'];
const SEGS = ['ns', 'default', 'sa', 'web', 'api', 'x'];
const NOW = 1_000_000;
/** A pattern no SPIFFE ID can match (over 2048 bytes): grants holding one are served without it. */
const LONG = `spiffe://example.org/${'a'.repeat(2100)}`;

function generator(seed: number) {
  const r = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const path = (max: number) => Array.from({ length: Math.floor(r() * (max + 1)) }, () => pick(SEGS));
  const id = () => {
    const segs = path(4);
    return `spiffe://${pick(TDS)}${segs.map((s) => `/${s}`).join('')}`;
  };
  const pattern = (): string => {
    const td = pick(TDS);
    const kind = r();
    if (kind < 0.1) return `spiffe://${td}/**`;
    if (kind < 0.15) return `spiffe://${td}`;
    const segs = path(4).map((s) => (r() < 0.25 ? '*' : s));
    if (r() < 0.3) segs.push('**');
    return `spiffe://${td}${segs.map((s) => `/${s}`).join('')}`;
  };
  const rule = (): PolicyRule => (r() < 0.5 ? { from: [pattern()] } : { from: [pattern(), pattern()], to: { ports: [8080], methods: ['GET'], paths: ['/v1/*'] } });
  const policy = (i: number): AuthorizationPolicy => ({
    // A few repeated names: the order among them is the set's order, before as now.
    name: r() < 0.1 ? `same-${Math.floor(r() * 3)}` : `p-${Math.floor(r() * 1000)}-${i}`,
    selector: pattern(),
    action: r() < 0.3 ? 'DENY' : 'ALLOW',
    mode: r() < 0.2 ? 'audit' : 'enforce',
    rules: Array.from({ length: 1 + Math.floor(r() * 3) }, rule),
    ...(r() < 0.5 ? { source: { file: `p${i}.yaml`, line: i + 1 } } : {}),
  });
  const grant = (i: number): BreakGlassGrant => ({
    id: `g-${i}`,
    to: r() < 0.05 ? LONG : pattern(),
    from: r() < 0.1 ? [LONG] : r() < 0.2 ? [LONG, pattern()] : [pattern()],
    expiresAtMs: NOW + Math.floor((r() - 0.3) * 100_000),
    reason: 'r',
    ...(r() < 0.5 ? { createdBy: 'ops', createdAtMs: NOW - 5 } : {}),
  });
  return { r, id, policy, grant, pick };
}

describe('the indexed config snapshot equals the full scan', async () => {
  const ca = await TestCa.create();
  const bundle = TrustBundle.parse(ca.trustDomain, ca.bundlePem());
  const encode = loadTesseraServices().config.service['Watch']!.responseSerialize;
  const plain = (m: ConfigSnapshotMsg) => JSON.parse(JSON.stringify(m)) as unknown;

  test('over randomized policy sets, grants and IDs: same messages, same key equalities, same bytes', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const g = generator(seed);
      const inputs: SnapshotInputs = {
        version: seed,
        bundles: seed % 2 ? [bundle] : [],
        policies: Array.from({ length: 1 + Math.floor(g.r() * 60) }, (_, i) => g.policy(i)),
        grants: Array.from({ length: Math.floor(g.r() * 12) }, (_, i) => g.grant(i)),
        denyList: { spiffeIds: [g.id(), g.id()], serials: seed % 3 ? ['0b', '0a'] : [] },
      };
      const parts = new SnapshotParts(inputs, NOW, { encode });
      const ids = [...new Set(Array.from({ length: 40 }, g.id))].map((t) => SpiffeId.parse(t));
      const keys: { old: string; now: string }[] = [];
      for (const id of ids) {
        // Later builds of one version see a later time: grants expire between them, as they do between opens.
        const at = NOW + Math.floor(g.r() * 50_000);
        const want = fullScanSnapshot(inputs, id, at);
        const got = parts.build(id, at);
        expect(plain(got.message), `seed ${seed}, ${id}`).toEqual(plain(want.message));
        expect(carriedEncoding(got.message)!.equals(encode(want.message)), `bytes, seed ${seed}, ${id}`).toBe(true);
        expect(got.examined).toBe(got.message.policies.length + got.message.break_glass.length);
        keys.push({ old: want.contentKey, now: got.contentKey });
      }
      for (const a of keys) for (const b of keys) expect(a.now === b.now, `seed ${seed}`).toBe(a.old === b.old);
    }
  });

  test('an ID is matched exactly as before at the edges: no path, deep paths, the other trust domain', () => {
    const policies: AuthorizationPolicy[] = [
      { name: 'bare', selector: 'spiffe://example.org', action: 'ALLOW', mode: 'enforce', rules: [{ from: ['spiffe://example.org/**'] }] },
      { name: 'td-wide', selector: 'spiffe://example.org/**', action: 'DENY', mode: 'enforce', rules: [{ from: ['spiffe://other.org/**'] }] },
      { name: 'one-seg', selector: 'spiffe://example.org/*', action: 'ALLOW', mode: 'audit', rules: [{ from: ['spiffe://example.org/a'] }] },
      { name: 'mid-star', selector: 'spiffe://example.org/ns/*/sa/web', action: 'ALLOW', mode: 'enforce', rules: [{ from: ['spiffe://example.org/a'] }] },
      { name: 'prefix', selector: 'spiffe://example.org/ns/**', action: 'ALLOW', mode: 'enforce', rules: [{ from: ['spiffe://example.org/a'] }] },
      { name: 'other', selector: 'spiffe://other.org/**', action: 'ALLOW', mode: 'enforce', rules: [{ from: ['spiffe://example.org/a'] }] },
    ];
    const inputs: SnapshotInputs = { version: 1, bundles: [], policies, grants: [], denyList: { spiffeIds: [], serials: [] } };
    const parts = new SnapshotParts(inputs, NOW);
    const names = (id: string) => parts.build(SpiffeId.parse(id), NOW).message.policies.map((p) => p.name);
    const before = (id: string) => fullScanSnapshot(inputs, SpiffeId.parse(id), NOW).message.policies.map((p) => p.name);
    for (const id of ['spiffe://example.org', 'spiffe://example.org/x', 'spiffe://example.org/ns', 'spiffe://example.org/ns/a/sa/web', 'spiffe://example.org/ns/a/sa/web/extra', 'spiffe://other.org', 'spiffe://other.org/ns/a']) {
      expect(names(id), id).toEqual(before(id));
    }
    expect(names('spiffe://example.org')).toEqual(['bare']);
    expect(names('spiffe://example.org/ns/a/sa/web')).toEqual(['mid-star', 'prefix', 'td-wide']);
  });

  test('the same policy set (the same frozen array) is prepared once for the next version too', () => {
    let reads = 0;
    const counted = (i: number): AuthorizationPolicy => ({
      get selector() {
        reads++;
        return `spiffe://example.org/ns/n${i}/**`;
      },
      name: `p${i}`,
      action: 'ALLOW',
      mode: 'enforce',
      rules: [{ from: ['spiffe://example.org/a'] }],
    });
    const policies = Object.freeze(Array.from({ length: 50 }, (_, i) => counted(i)));
    const inputs = (version: number): SnapshotInputs => ({ version, bundles: [], policies, grants: [], denyList: { spiffeIds: [], serials: [] } });
    const v1 = new SnapshotParts(inputs(1), NOW);
    const perVersion = reads;
    for (let i = 0; i < 50; i++) v1.build(SpiffeId.parse(`spiffe://example.org/ns/n${i}/sa/w`), NOW);
    // The builds read no selector: the index answered.
    expect(reads).toBe(perVersion);
    const v2 = new SnapshotParts(inputs(2), NOW, { reuse: v1.policies });
    expect(v2.build(SpiffeId.parse('spiffe://example.org/ns/n7/sa/w'), NOW).message.policies.map((p) => p.name)).toEqual(['p7']);
    expect(reads).toBe(perVersion);
    // Another array (a new set loaded) is prepared again.
    new SnapshotParts({ ...inputs(3), policies: [...policies] }, NOW, { reuse: v1.policies });
    expect(reads).toBe(2 * perVersion);
  });
});
