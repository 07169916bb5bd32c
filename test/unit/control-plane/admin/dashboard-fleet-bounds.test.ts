// The fleet view against the real SQLite report store, fed the audit 16b payloads: reports within every per-ID
// limit but built to make the view huge (256 denials a report under invented 253-character policy names, "last
// seen" in the year 9999, 64 instances an ID) or to crowd a real proxy out (17 IDs x 64 instances, all newer). The
// denials panel is cut and invented names fold into one row per reporting ID, a proxy's time cannot sort it first,
// the build reads a bounded number of report bytes, and the real proxy stays on the page.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { CaView } from '../../../../control-plane/src/admin/dashboard/ca-panel.js';
import { buildFleetView, DEFAULT_FLEET_LIMITS, type FleetSources } from '../../../../control-plane/src/admin/dashboard/fleet-view.js';
import { openSqliteStore } from '../../../../control-plane/src/store/sqlite/open-sqlite-store.js';
import type { ControlPlaneStore, ProxyReport } from '../../../../control-plane/src/store/store-contract.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { makeTempDir } from '../../../helpers/run.js';

const TD = 'example.org';
const LEGIT = `spiffe://${TD}/ns/default/sa/web`;
const YEAR_9999 = 253_402_300_799_999;
/** denial-panel.ts UNKNOWN_POLICIES, spelled out so this file also runs against the code before it. */
const UNKNOWN_POLICIES = '?';
const CA: CaView = { authorities: [], signer: { authorityId: 'aaaa1111', notAfterMs: Number.MAX_SAFE_INTEGER, intermediate: { serialNumber: '0A' } } } as unknown as CaView;

describe('fleet view bounds (real SQLite store)', () => {
  const time = new FakeTime();
  let store: ControlPlaneStore;
  let cleanup: () => Promise<void>;
  /** Bytes of report text (as JSON) each build was handed by the store. */
  const readChars: number[] = [];

  beforeAll(async () => {
    const tmp = await makeTempDir();
    cleanup = tmp.cleanup;
    store = await openSqliteStore(tmp.dir);
  });
  afterAll(async () => {
    await store.close();
    await cleanup();
  });

  const sources = (policies: readonly string[]): FleetSources => ({
    trustDomain: TD,
    clock: time,
    ca: () => CA,
    inventory: { livePage: async () => [] },
    reports: {
      list: async (since, limit, maxBytes) => {
        const got = await store.reports.list(since, limit, maxBytes);
        readChars.push(got.reduce((n, r) => n + Buffer.byteLength(JSON.stringify(r)), 0));
        return got;
      },
    },
    grants: { active: async () => [] },
    revocations: { live: async () => [] },
    audit: { recent: async () => [] },
    policies: () => policies.map((name) => ({ name })),
  });

  const report = (spiffeId: string, instance: string, receivedAtMs: number, denials: ProxyReport['denials']): ProxyReport => ({ spiffeId, instance, served: [{ listener: 'app', serial: '0a01', notAfterMs: receivedAtMs + 60_000 }], checkedAtMs: receivedAtMs, receivedAtMs, replica: 'cp-1', denials });

  test('256 invented policies x 64 instances, "last seen" in 9999: one folded row, the real one kept, clamped times, bounded reads', async () => {
    await store.reports.prune(Number.MAX_SAFE_INTEGER);
    const now = time.nowMs();
    await store.reports.put(report(LEGIT, 'web-1', now - 30_000, [{ policy: 'legit-policy', outcome: 'deny', count: 2, lastAtMs: now - 31_000, lastCaller: 'spiffe://example.org/x' }]));
    const ATTACKER = `spiffe://${TD}/ns/t/sa/a0`;
    for (let i = 0; i < 64; i++) {
      const denials = Array.from({ length: 256 }, (_, n) => ({ policy: `p${i}-${n}-${'x'.repeat(240)}`, outcome: 'deny' as const, count: 1, lastAtMs: YEAR_9999, lastCaller: 'spiffe://example.org/y' }));
      await store.reports.put(report(ATTACKER, `i${i}`, now - 1_000, denials));
    }
    readChars.length = 0;
    const view = await buildFleetView(sources(['legit-policy']));
    // Before: 16,385 rows (one per invented name), the real one last.
    expect(view.denials.map((d) => [d.policy, d.unknownFrom])).toEqual([
      [UNKNOWN_POLICIES, ATTACKER],
      ['legit-policy', null],
    ]);
    expect(view.denials.every((d) => d.lastAtMs <= now)).toBe(true);
    expect(view.denials[0]?.lastAtMs).toBe(now - 1_000);
    // 64 reports of ~90,000 bytes (5.8 MB) were stored; the build read at most its budget and one report past it.
    expect(readChars[0]).toBeLessThanOrEqual(DEFAULT_FLEET_LIMITS.maxReportBytes + 100_000);
    expect(view.proxies.some((p) => p.spiffeId === LEGIT)).toBe(true);
  });

  test('the denials panel is cut (known policies first), and says how many rows it left out', async () => {
    await store.reports.prune(Number.MAX_SAFE_INTEGER);
    const now = time.nowMs();
    const names = Array.from({ length: 600 }, (_, n) => `policy-${n}`);
    for (let i = 0; i < 3; i++) {
      const denials = names.slice(i * 200, i * 200 + 200).map((policy) => ({ policy, outcome: 'audit' as const, count: 1, lastAtMs: now - 2_000, lastCaller: 'c' }));
      await store.reports.put(report(LEGIT, `web-${i}`, now - 1_000, denials));
    }
    await store.reports.put(report(`spiffe://${TD}/ns/t/sa/a1`, 'x', now - 1_000, [{ policy: 'made-up', outcome: 'deny', count: 1, lastAtMs: now, lastCaller: 'c' }]));
    const view = await buildFleetView(sources(names));
    expect(view.denials).toHaveLength(DEFAULT_FLEET_LIMITS.maxDenialRows);
    expect(view.denials.every((d) => d.unknownFrom === null)).toBe(true);
    expect(view.truncated.denials).toBe(601 - DEFAULT_FLEET_LIMITS.maxDenialRows);
  });

  test('17 IDs x 64 instances, all newer than the real proxy, do not push it out of what the store lists (audit 16b F2)', async () => {
    await store.reports.prune(Number.MAX_SAFE_INTEGER);
    const now = time.nowMs();
    await store.reports.put(report(LEGIT, 'web-1', now - 30_000, []));
    for (let id = 0; id < 17; id++) for (let i = 0; i < 64; i++) await store.reports.put(report(`spiffe://${TD}/ns/t/sa/b${id}`, `i${i}`, now - 1_000 + id, []));
    const view = await buildFleetView(sources([]));
    expect(view.proxies.some((p) => p.spiffeId === LEGIT && p.instance === 'web-1')).toBe(true);
    expect(view.proxies).toHaveLength(DEFAULT_FLEET_LIMITS.maxProxyRows);
  });
});
