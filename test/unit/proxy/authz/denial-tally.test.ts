// The denial counters behind the fleet report, fed through the proxy's one authorization gate (authorize.ts) with
// real policies and a real identity: allows leave no trace; denials are kept per (deciding policy, outcome) with
// the last time and caller; audit-mode would-denies are kept apart ("audit"); the rows stay within their bound.
import { describe, expect, test } from 'vitest';
import type { AuthorizationPolicy } from '../../../../common/policy/policy-types.js';
import { SpiffeId } from '../../../../common/spiffe/spiffe-id.js';
import { TrustBundle, TrustBundleSet } from '../../../../common/spiffe/trust-bundle.js';
import { authorize } from '../../../../proxy/src/authz/authorize.js';
import { DenialTally, MAX_DENIAL_ROWS } from '../../../../proxy/src/authz/denial-tally.js';
import { PolicyHolder } from '../../../../proxy/src/authz/policy-holder.js';
import { IdentityStore } from '../../../../proxy/src/identity/identity-store.js';
import { createProxyRegistry, ProxyMetrics } from '../../../../proxy/src/telemetry/metrics.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { TestCa } from '../../../helpers/test-ca.js';

const API = 'spiffe://example.org/ns/default/sa/api';
const WEB = SpiffeId.parse('spiffe://example.org/ns/default/sa/web');
const BATCH = SpiffeId.parse('spiffe://example.org/ns/batch/sa/job');

const policy = (name: string, action: 'ALLOW' | 'DENY', mode: 'enforce' | 'audit', from: string[], paths?: string[]): AuthorizationPolicy => ({
  name,
  selector: API,
  action,
  mode,
  rules: [{ from, ...(paths ? { to: { paths } } : {}) }],
});

async function gate(policies: AuthorizationPolicy[]) {
  const time = new FakeTime();
  const ca = await TestCa.create({ nowMs: time.nowMs() });
  const identity = new IdentityStore(time);
  const svid = await ca.mintSvid(API);
  identity.update({ chain: svid.chain, key: svid.key, bundles: new TrustBundleSet([TrustBundle.parse('example.org', ca.bundlePem())]), source: 'files' });
  const holder = new PolicyHolder('deny');
  holder.setPolicies(policies);
  const denials = new DenialTally();
  const deps = { policies: holder, identity, metrics: new ProxyMetrics(createProxyRegistry(), { defaultMetrics: false }), nowMs: () => time.nowMs(), denials };
  const ask = (source: SpiffeId | null, path = '/') => authorize(deps, { source, port: 15006, method: 'GET', path, protocol: 'http' });
  return { time, denials, ask };
}

describe('denial tally through authorize()', () => {
  test('allowed requests leave no row; denials count per deciding policy with the last time and caller', async () => {
    const g = await gate([policy('api-allow-web', 'ALLOW', 'enforce', [WEB.toString()]), policy('api-deny-admin', 'DENY', 'enforce', ['spiffe://example.org/**'], ['/admin/**'])]);
    for (let i = 0; i < 5; i++) expect(g.ask(WEB).allowed).toBe(true);
    expect(g.denials.rows()).toEqual([]);

    const t0 = g.time.nowMs();
    expect(g.ask(WEB, '/admin/users').allowed).toBe(false);
    g.time.advance(1_000);
    expect(g.ask(BATCH, '/admin/x').allowed).toBe(false);
    // No rule of the ALLOW policy matches: no single policy decided.
    expect(g.ask(BATCH).allowed).toBe(false);
    expect(g.ask(null).allowed).toBe(false);
    expect(g.denials.rows()).toEqual([
      { policy: 'api-deny-admin', outcome: 'deny', count: 2, lastAtMs: t0 + 1_000, lastCaller: BATCH.toString() },
      { policy: '', outcome: 'deny', count: 2, lastAtMs: t0 + 1_000, lastCaller: 'unauthenticated' },
    ]);
  });

  test('an audit-mode policy that would deny is kept as "audit", and the request still passes', async () => {
    const g = await gate([policy('api-allow-all', 'ALLOW', 'enforce', ['spiffe://example.org/**']), policy('api-audit-deny-batch', 'DENY', 'audit', ['spiffe://example.org/ns/batch/**'])]);
    expect(g.ask(BATCH).allowed).toBe(true);
    expect(g.ask(BATCH).allowed).toBe(true);
    expect(g.ask(WEB).allowed).toBe(true);
    expect(g.denials.rows()).toEqual([{ policy: 'api-audit-deny-batch', outcome: 'audit', count: 2, lastAtMs: g.time.nowMs(), lastCaller: BATCH.toString() }]);
  });

  test('a denied request that an audit policy would also deny counts once under each outcome', async () => {
    const g = await gate([policy('api-allow-web', 'ALLOW', 'enforce', [WEB.toString()]), policy('api-audit-deny-batch', 'DENY', 'audit', ['spiffe://example.org/ns/batch/**'])]);
    expect(g.ask(BATCH).allowed).toBe(false);
    expect(g.denials.rows().map((r) => [r.policy, r.outcome, r.count])).toEqual([
      ['', 'deny', 1],
      ['api-audit-deny-batch', 'audit', 1],
    ]);
  });
});

describe('DenialTally bounds', () => {
  test('beyond its bound, new (policy, outcome) pairs fold into "*" per outcome; known ones keep counting', () => {
    const t = new DenialTally(3);
    t.record('a', 'deny', WEB, 1);
    t.record('b', 'deny', WEB, 2);
    t.record('a', 'audit', WEB, 3);
    t.record('c', 'deny', BATCH, 4);
    t.record('d', 'deny', null, 5);
    t.record('e', 'audit', WEB, 6);
    t.record('a', 'deny', BATCH, 7);
    expect(t.rows()).toEqual([
      { policy: 'a', outcome: 'deny', count: 2, lastAtMs: 7, lastCaller: BATCH.toString() },
      { policy: 'b', outcome: 'deny', count: 1, lastAtMs: 2, lastCaller: WEB.toString() },
      { policy: '*', outcome: 'deny', count: 2, lastAtMs: 5, lastCaller: 'unauthenticated' },
      { policy: 'a', outcome: 'audit', count: 1, lastAtMs: 3, lastCaller: WEB.toString() },
      { policy: '*', outcome: 'audit', count: 1, lastAtMs: 6, lastCaller: WEB.toString() },
    ]);
  });

  test('the default bound leaves room for both folded rows within the report limit of 256', () => {
    const t = new DenialTally();
    for (let i = 0; i < 400; i++) t.record(`p${i}`, i % 2 === 0 ? 'deny' : 'audit', WEB, i);
    const rows = t.rows();
    expect(rows).toHaveLength(MAX_DENIAL_ROWS + 2);
    expect(rows.length).toBeLessThanOrEqual(256);
    expect(rows.filter((r) => r.policy === '*').map((r) => r.outcome)).toEqual(['deny', 'audit']);
    expect(rows.reduce((n, r) => n + r.count, 0)).toBe(400);
  });

  test('the last time is kept in whole milliseconds (the listeners read a finer clock; the report field is a uint64)', () => {
    const t = new DenialTally();
    t.record('a', 'deny', WEB, 1_767_225_600_123.789);
    expect(t.rows()[0]!.lastAtMs).toBe(1_767_225_600_123);
  });
});
