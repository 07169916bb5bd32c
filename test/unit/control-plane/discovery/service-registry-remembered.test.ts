// How long remembered self-registrations outlive a control-plane restart or a replica's death (audit 54a F2): the
// window is derived from the proxies' reconnect cap, counts from when the control plane is serving (not from the
// registry's start), and does not shrink with a short registrationGrace — a real SQLite store, one fake time.
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { CONTROL_PLANE_RECONNECT_MAX_MS, RECONNECT_MARGIN_MS, rememberedForMs } from '../../../../common/routing/reconnect-window.js';
import type { ServiceEndpoint } from '../../../../common/routing/service-endpoint.js';
import { ServiceRegistry } from '../../../../control-plane/src/discovery/service-registry.js';
import { openDatabase } from '../../../../control-plane/src/store/sqlite/sqlite-database.js';
import { SqliteRegistrationStore } from '../../../../control-plane/src/store/sqlite/sqlite-registration-store.js';
import { ControlPlaneEndpoints, DEFAULT_ENDPOINT_BACKOFF } from '../../../../proxy/src/identity/control-plane-endpoints.js';
import { DEFAULT_RECONNECT_BACKOFF } from '../../../../proxy/src/identity/reconnecting-stream.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';

const API = 'spiffe://example.org/ns/default/sa/api';
/** A short grace, as an operator may set it: the remembered window must not shrink with it. */
const GRACE = 1_000;
const REMEMBER = rememberedForMs(GRACE);
const ep = (host: string): ServiceEndpoint => ({ host, port: 80, spiffeId: API, protocol: 'http', ready: true, zone: '', weight: 100, source: 'self' });
const reg = (host: string) => ({ service: 'api', endpoint: ep(host) });
const addresses = (r: ServiceRegistry) => r.endpoints('api').map((e) => `${e.address}${e.confirmed ? '' : ' unconfirmed'}`);

describe('rememberedForMs: the window covers the proxies’ reconnect schedule', () => {
  test('never shorter than the reconnect cap plus the margin, nor than the grace', () => {
    expect(rememberedForMs(1_000)).toBe(CONTROL_PLANE_RECONNECT_MAX_MS + RECONNECT_MARGIN_MS);
    expect(rememberedForMs(10_000)).toBe(CONTROL_PLANE_RECONNECT_MAX_MS + RECONNECT_MARGIN_MS);
    expect(rememberedForMs(0)).toBe(CONTROL_PLANE_RECONNECT_MAX_MS + RECONNECT_MARGIN_MS);
    expect(rememberedForMs(60_000)).toBe(60_000);
    expect(rememberedForMs(1_000, 40_000)).toBe(40_000 + RECONNECT_MARGIN_MS);
  });

  test("the proxies' backoffs are capped at the cap the control plane plans for, whatever the attempt or draw", () => {
    expect(DEFAULT_ENDPOINT_BACKOFF.maxMs).toBe(CONTROL_PLANE_RECONNECT_MAX_MS);
    expect(DEFAULT_RECONNECT_BACKOFF.maxMs).toBe(CONTROL_PLANE_RECONNECT_MAX_MS);
    const time = new FakeTime();
    const endpoints = new ControlPlaneEndpoints({ addresses: ['127.0.0.1:1'], clock: time, timers: time, random: () => 0.999_999 });
    for (let attempt = 0; attempt < 40; attempt++) expect(endpoints.retryDelayMs(attempt)).toBeLessThanOrEqual(CONTROL_PLANE_RECONNECT_MAX_MS);
  });
});

describe('ServiceRegistry: remembered registrations across a restart', () => {
  const tmp = tempDirPerTest();
  let cleanup: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanup.reverse()) c();
    cleanup = [];
  });

  function setup() {
    const db = openDatabase(join(tmp.dir, 'registrations.db'));
    const store = new SqliteRegistrationStore(db);
    const time = new FakeTime();
    const open: ServiceRegistry[] = [];
    cleanup.push(() => {
      for (const r of open) r.stop();
      db.close();
    });
    let counter = 0;
    const replica = async (owner: string) => {
      const registry = await ServiceRegistry.open({ clock: time, timers: time, nextVersion: async () => ++counter, graceMs: GRACE, rememberMs: REMEMBER, owner, persistence: store });
      open.push(registry);
      return registry;
    };
    /** Lets time pass in quarter-second steps, each followed by the store writes and reloads it caused. */
    const pass = async (ms: number) => {
      for (let left = ms; left > 0; left -= 250) {
        time.advance(Math.min(250, left));
        for (let i = 0; i < 3; i++) {
          await Promise.all(open.map((r) => r.settled()));
          for (const r of open) await r.reloadStored();
          await new Promise((r) => setImmediate(r));
        }
      }
    };
    const stored = async () => (await store.loadAll()).flatMap((s) => s.registrations.map((r) => r.endpoint.host)).sort();
    return { replica, pass, stored };
  }

  test('a restarted control plane serves what it held for a full reconnect delay plus the margin after it is serving, then sweeps what nobody registered again', async () => {
    const { replica, pass, stored } = setup();
    const before = await replica('cp/1');
    before.openSession(API).replace([reg('127.0.0.2'), reg('127.0.0.3')]);
    await pass(1_000);
    // Killed: no call ends, nothing is removed. Down for 30 s (the proxies' backoff reaches its cap meanwhile).
    before.stop();
    await pass(30_000);
    const after = await replica('cp/2');
    expect(addresses(after)).toEqual(['127.0.0.2:80 unconfirmed', '127.0.0.3:80 unconfirmed']);
    // The CA, the store and the listener take a while: the window counts from serving, not from the registry's start.
    await pass(4_000);
    after.serving();
    // One proxy's pending retry fires just before its cap after the control plane is serving, and registers again.
    await pass(CONTROL_PLANE_RECONNECT_MAX_MS - 250);
    expect(addresses(after)).toEqual(['127.0.0.2:80 unconfirmed', '127.0.0.3:80 unconfirmed']);
    after.openSession(API).replace([reg('127.0.0.2')]);
    // The other is still served until the margin is used up too ...
    await pass(REMEMBER - CONTROL_PLANE_RECONNECT_MAX_MS - 250);
    expect(addresses(after)).toEqual(['127.0.0.2:80', '127.0.0.3:80 unconfirmed']);
    // ... and then swept: nobody registered it again within a whole reconnect delay.
    await pass(1_500);
    expect(addresses(after)).toEqual(['127.0.0.2:80']);
    expect(await stored()).toEqual(['127.0.0.2']);
  });

  test("a killed replica's registrations are served by the survivor for the remembered window after its last heartbeat, not just the grace", async () => {
    const { replica, pass, stored } = setup();
    const a = await replica('cp-a');
    const b = await replica('cp-b');
    a.serving();
    b.serving();
    a.openSession(API).replace([reg('127.0.0.2')]);
    await pass(1_000);
    expect(addresses(b)).toEqual(['127.0.0.2:80 unconfirmed']);
    a.stop();
    await pass(REMEMBER - 1_000);
    expect(addresses(b)).toEqual(['127.0.0.2:80 unconfirmed']);
    await pass(2_000);
    expect(addresses(b)).toEqual([]);
    expect(await stored()).toEqual([]);
  });

  test('an ended call on a live control plane still goes after the configured grace', async () => {
    const { replica, pass } = setup();
    const a = await replica('cp-a');
    a.serving();
    const s = a.openSession(API);
    s.replace([reg('127.0.0.2')]);
    s.close();
    await pass(GRACE - 250);
    expect(addresses(a)).toEqual(['127.0.0.2:80 unconfirmed']);
    await pass(500);
    expect(addresses(a)).toEqual([]);
  });
});
