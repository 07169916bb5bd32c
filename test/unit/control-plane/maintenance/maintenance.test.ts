// The control plane's upkeep schedule on a fake clock, over the real store, rate limiter and break-glass list:
// what main.ts's one-second tick did — Watch expiry and gauges, break-glass expiry and self-SVID renewal (tasks of
// their own, since they wait for the store) every second; CA maintenance every 5 s, one at a time; idle limiter
// buckets every minute; spent join tokens every hour, and the inventory's rows past inventory.keep (every keep, when
// shorter) — with the same failure log messages.

import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { createMetrics } from '../../../../control-plane/src/admin/metrics.js';
import { RateLimiter } from '../../../../control-plane/src/issuance/rate-limiter.js';
import { until } from '../../../helpers/until.js';
import { AUDIT_PRUNE_BATCH, controlPlaneMaintenance, TOKEN_KEEP_MS } from '../../../../control-plane/src/maintenance/maintenance.js';
import { BreakGlass } from '../../../../control-plane/src/policy/break-glass.js';
import { hashToken } from '../../../../control-plane/src/store/join-token.js';
import { openSqliteStore } from '../../../../control-plane/src/store/sqlite/open-sqlite-store.js';
import type { ControlPlaneStore, IssuedSvidRow } from '../../../../control-plane/src/store/store-contract.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { makeTempDir } from '../../../helpers/run.js';

const AUDIT_KEEP_MS = 30 * 24 * 3_600_000;
const INVENTORY_KEEP_MS = 24 * 3_600_000;
const BUILD = { version: '0.0.0-test', node: process.version, openssl: process.versions.openssl };

describe('controlPlaneMaintenance', () => {
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  let store: ControlPlaneStore;
  beforeEach(async () => {
    tmp = await makeTempDir();
    store = await openSqliteStore(tmp.dir);
  });
  afterEach(async () => {
    await store.close();
    await tmp.cleanup();
  });

  async function setup(over: { hubTick?: () => void; maintain?: () => Promise<unknown>; renewSelf?: () => Promise<unknown>; leads?: () => boolean; inventoryKeepMs?: number } = {}) {
    const time = new FakeTime();
    const registry = new Registry();
    const metrics = createMetrics(registry, BUILD);
    const calls = { hubTicks: 0, renewals: 0, maintains: 0 };
    const logged: string[] = [];
    const pruned: number[] = [];
    const inventoryPruned: number[] = [];
    const limiter = new RateLimiter({ burst: 2, perMinute: 60 }, time);
    const breakGlass = await BreakGlass.open({ store: store.grants, audit: store.audit, clock: time, onChange: () => {} });
    const scheduler = controlPlaneMaintenance({
      clock: time,
      timers: time,
      tickMs: 1_000,
      hub: { tick: over.hubTick ?? (() => calls.hubTicks++) },
      breakGlass,
      server: { connections: 3 },
      metrics,
      renewSelf:
        over.renewSelf ??
        (async () => {
          calls.renewals++;
        }),
      limiter,
      tokens: store.tokens,
      audit: store.audit,
      auditKeepMs: AUDIT_KEEP_MS,
      onAuditPruned: (rows) => pruned.push(rows),
      inventory: store.inventory,
      inventoryKeepMs: over.inventoryKeepMs ?? INVENTORY_KEEP_MS,
      onInventoryPruned: (rows) => inventoryPruned.push(rows),
      ...(over.leads ? { leads: over.leads } : {}),
      ca: {
        maintain: over.maintain ?? (async () => {
          calls.maintains++;
          return [];
        }),
      },
      onFailure: (message, e) => logged.push(`${message}: ${(e as Error).message}`),
    });
    return { time, registry, calls, logged, pruned, inventoryPruned, limiter, breakGlass, scheduler };
  }

  const gauge = async (registry: Registry, name: string) => (await registry.getSingleMetric(name)!.get()).values[0]?.value;

  test('every second: Watch expiry, break-glass expiry, self-SVID renewal and the sampled gauges; every 5 s the CA', async () => {
    const { time, registry, calls, breakGlass, scheduler } = await setup();
    await breakGlass.open({ from: ['spiffe://example.org/ns/a/sa/b'], to: 'spiffe://example.org/ns/c/sa/d', durationMs: 2_500, reason: 'incident 7', createdBy: 'test' });
    // Second by second, letting the async tasks finish in between, as real timers would.
    const seconds = async (n: number) => {
      for (let i = 0; i < n; i++) {
        time.advance(1_000);
        await scheduler.settled();
      }
    };
    scheduler.start();
    await seconds(1);
    expect(calls).toEqual({ hubTicks: 1, renewals: 1, maintains: 0 });
    expect(await gauge(registry, 'tessera_grpc_connections')).toBe(3);
    expect(await gauge(registry, 'tessera_break_glass_grants_active')).toBe(1);
    await seconds(2); // the grant ran out at 2.5 s: expired (and audited) on the next tick
    expect(await gauge(registry, 'tessera_break_glass_grants_active')).toBe(0);
    expect((await store.audit.recent('break_glass.expired')).map((e) => e['to'])).toEqual(['spiffe://example.org/ns/c/sa/d']);
    await seconds(2);
    expect(calls.maintains).toBe(1);
    await seconds(5);
    expect(calls).toEqual({ hubTicks: 10, renewals: 10, maintains: 2 });
    scheduler.stop();
  });

  test('idle rate-limit buckets go after a minute; join tokens past their keep time after an hour', async () => {
    const { time, limiter, scheduler } = await setup();
    limiter.take('spiffe://example.org/ns/a/sa/b');
    const old = 'old-token';
    await store.tokens.create(old, 'spiffe://example.org/node/x', time.nowMs() - TOKEN_KEEP_MS - 10_000, 1_000);
    scheduler.start();
    time.advance(59_000);
    expect(limiter.size).toBe(1);
    time.advance(1_000);
    expect(limiter.size).toBe(0);
    time.advance(3_539_000);
    await scheduler.settled();
    expect(await store.tokens.find(hashToken(old))).toMatchObject({ spiffeId: 'spiffe://example.org/node/x' });
    time.advance(1_000);
    await scheduler.settled();
    expect(await store.tokens.find(hashToken(old))).toBeUndefined();
    scheduler.stop();
  });

  test('every hour the leader deletes audit rows older than audit.keep, in batches, and says how many', async () => {
    const { time, pruned, scheduler } = await setup();
    const old = AUDIT_PRUNE_BATCH + 7;
    for (let i = 0; i < old; i++) store.audit.record(time.nowMs() - AUDIT_KEEP_MS - 1_000, { event: 'svid.issued', n: i });
    store.audit.record(time.nowMs() - AUDIT_KEEP_MS + 7_200_000 + 5_000, { event: 'svid.issued', n: 'kept' });
    scheduler.start();
    time.advance(3_599_000);
    await scheduler.settled();
    expect(pruned).toEqual([]);
    time.advance(1_000);
    // One batch, then the event loop's turn before the next (SQLite holds it for a statement): here a timer.
    await until('the first batch ran', async () => (await store.audit.recent('svid.', 10)).length === 8);
    expect(pruned).toEqual([]);
    time.advance(0);
    await scheduler.settled();
    expect(pruned).toEqual([old]);
    expect((await store.audit.recent('svid.', 10)).map((e) => e['n'])).toEqual(['kept']);
    time.advance(3_600_000);
    await scheduler.settled();
    expect(pruned).toEqual([old]); // nothing left to delete: nothing said
    scheduler.stop();
  });

  test('a replica that does not lead never prunes the audit rows', async () => {
    const { time, pruned, scheduler } = await setup({ leads: () => false });
    store.audit.record(time.nowMs() - AUDIT_KEEP_MS - 1_000, { event: 'svid.issued' });
    scheduler.start();
    time.advance(3_600_000);
    await scheduler.settled();
    expect(pruned).toEqual([]);
    expect(await store.audit.recent('svid.')).toHaveLength(1);
    scheduler.stop();
  });

  /** An attested SVID (its own renewal tree) expiring at `notAfterMs`. */
  const svid = (serial: string, notAfterMs: number): IssuedSvidRow => ({
    serial,
    spiffeId: 'spiffe://example.org/ns/a/sa/b',
    authorityId: 'auth-1',
    intermediateSerial: 'i-1',
    notBeforeMs: notAfterMs - 3_600_000,
    notAfterMs,
    issuedAtMs: notAfterMs - 3_600_000,
    attestedAs: 'join_token:abcd1234',
    kind: 'attest',
    caller: '127.0.0.1:1',
    lineage: serial,
    chain: serial,
    depth: 0,
  });

  test('every hour the leader deletes inventory rows expired more than inventory.keep ago, in batches, and says how many', async () => {
    const { time, inventoryPruned, scheduler } = await setup();
    const old = AUDIT_PRUNE_BATCH + 7;
    for (let i = 0; i < old; i++) await store.inventory.record(svid(`aa${i.toString(16).padStart(4, '0')}`, time.nowMs() - INVENTORY_KEEP_MS - 1_000));
    await store.inventory.record(svid('bb02', time.nowMs() - INVENTORY_KEEP_MS + 7_200_000 + 5_000));
    scheduler.start();
    time.advance(3_599_000);
    await scheduler.settled();
    expect(inventoryPruned).toEqual([]);
    time.advance(1_000);
    await until('the first batch ran', async () => (await store.inventory.all()).length === 8);
    expect(inventoryPruned).toEqual([]);
    time.advance(0);
    await scheduler.settled();
    expect(inventoryPruned).toEqual([old]);
    expect((await store.inventory.all()).map((r) => r.serial)).toEqual(['bb02']);
    time.advance(3_600_000);
    await scheduler.settled();
    expect(inventoryPruned).toEqual([old]); // bb02 is still within its keep: nothing deleted, nothing said
    scheduler.stop();
  });

  test('an inventory.keep shorter than an hour is pruned to on its own period; a replica that does not lead never prunes it', async () => {
    const { time, inventoryPruned, scheduler } = await setup({ inventoryKeepMs: 2_000 });
    await store.inventory.record(svid('bb01', time.nowMs() + 1_000));
    scheduler.start();
    time.advance(2_000);
    await scheduler.settled();
    expect(inventoryPruned).toEqual([]);
    time.advance(2_000);
    await scheduler.settled();
    expect(inventoryPruned).toEqual([1]);
    scheduler.stop();
    const follower = await setup({ inventoryKeepMs: 2_000, leads: () => false });
    await store.inventory.record(svid('bb02', follower.time.nowMs() - 10_000));
    follower.scheduler.start();
    follower.time.advance(4_000);
    await follower.scheduler.settled();
    expect(follower.inventoryPruned).toEqual([]);
    expect(await store.inventory.find('bb02')).toBeDefined();
    follower.scheduler.stop();
  });

  test('failures are logged as before, and a slow CA maintenance is not started twice', async () => {
    let finish: () => void = () => {};
    let maintains = 0;
    const { time, logged, scheduler } = await setup({
      hubTick: () => {
        throw new Error('hub broke');
      },
      renewSelf: async () => {
        throw new Error('store down');
      },
      maintain: () => {
        maintains++;
        return maintains === 1 ? new Promise<void>((r) => (finish = r)) : Promise.reject(new Error('store read-only'));
      },
    });
    scheduler.start();
    time.advance(12_000);
    expect(maintains).toBe(1);
    finish();
    await scheduler.settled();
    time.advance(3_000);
    await scheduler.settled();
    expect(maintains).toBe(2);
    expect(logged.filter((l) => l === 'maintenance tick failed: hub broke')).toHaveLength(15);
    expect(logged).toContain('CA maintenance failed: store read-only');
    // A failing self-renewal is its own task: logged, and it never held up the Watch sweep (15 turns above).
    expect(logged).toContain('maintenance tick failed: store down');
    scheduler.stop();
  });
});
