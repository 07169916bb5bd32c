// "Verify in use" against a real TLS listener on loopback, timers injected: a check that finds another serial
// served is retried after recheckMs until it matches, and a check that matches leaves no timer behind (an idle
// sidecar's loop is not woken to find nothing to do).
import * as net from 'node:net';
import * as tls from 'node:tls';
import pino from 'pino';
import { afterEach, describe, expect, test } from 'vitest';
import { systemClock } from '../../../../common/clock.js';
import { TrustBundle, TrustBundleSet } from '../../../../common/spiffe/trust-bundle.js';
import { ServedVerifier } from '../../../../proxy/src/admin/served-verifier.js';
import { IdentityStore } from '../../../../proxy/src/identity/identity-store.js';
import { createProxyRegistry, ProxyMetrics } from '../../../../proxy/src/telemetry/metrics.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { type MintedSvid, TestCa } from '../../../helpers/test-ca.js';
import { until } from '../../../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function setup() {
  const ca = await TestCa.create({ trustDomain: TD });
  const installed = await ca.mintSvid(API);
  const other = await ca.mintSvid(API);
  const identity = new IdentityStore(systemClock);
  identity.update({ chain: installed.chain, key: installed.key, bundles: new TrustBundleSet([TrustBundle.parse(TD, ca.bundlePem())]), source: 'files' });
  const serve = (svid: MintedSvid) => ({ cert: svid.chainPem, key: svid.keyPem });
  const held: net.Socket[] = [];
  const server = tls.createServer(serve(other), (s) => s.end());
  // A listener that accepts and never finishes a handshake, then goes (as a draining proxy's does).
  const closing = net.createServer((s) => held.push(s.on('error', () => undefined)));
  await new Promise<void>((r) => closing.listen(0, '127.0.0.1', r));
  cleanups.push(() => closing.close());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => server.close());
  const time = new FakeTime();
  const registry = createProxyRegistry();
  const errors: string[] = [];
  let target: net.Server = server;
  const verifier = new ServedVerifier({
    identity,
    target: () => ({ host: '127.0.0.1', port: (target.address() as { port: number }).port }),
    metrics: new ProxyMetrics(registry, { defaultMetrics: false }),
    log: pino({ level: 'error' }, { write: (line: string) => void errors.push(line) }),
    nowMs: () => Date.now(),
    timers: time,
    recheckMs: 5_000,
  });
  cleanups.push(() => verifier.stop());
  const dialClosing = () => {
    target = closing;
  };
  const closeHeld = () => {
    for (const s of held) s.destroy();
  };
  const checks = async () => (await registry.getSingleMetric('tessera_svid_served_checks_total')?.get())?.values.reduce((n, v) => n + v.value, 0) ?? 0;
  return { verifier, time, identity, errors, checks, dialClosing, closeHeld, heldCount: () => held.length, serveInstalled: () => server.setSecureContext(serve(installed)) };
}

describe('ServedVerifier', () => {
  test('a mismatch is retried after recheckMs until the installed serial is served; then no timer is left', async () => {
    const { verifier, time, serveInstalled } = await setup();
    verifier.start();
    await until('the first check', () => verifier.last !== null, 5_000, 10);
    expect(verifier.last?.match).toBe(false);
    expect(verifier.rechecking).toBe(true);
    expect(time.pending).toBe(1);

    serveInstalled();
    time.advance(5_000);
    await until('the retry matched', () => verifier.last?.match === true, 5_000, 10);
    expect(verifier.rechecking).toBe(false);
    expect(time.pending).toBe(0);
  });

  test('a check that matches at once schedules nothing', async () => {
    const { verifier, time, serveInstalled } = await setup();
    serveInstalled();
    verifier.start();
    await until('the first check', () => verifier.last !== null, 5_000, 10);
    expect(verifier.last?.match).toBe(true);
    expect(time.pending).toBe(0);
  });

  test('a check in flight when it is stopped (the drain closing the listeners) records nothing: no mismatch, no error (audit 55b F4)', async () => {
    const { verifier, identity, errors, checks, dialClosing, closeHeld, heldCount } = await setup();
    dialClosing();
    const check = verifier.verify(identity.current!);
    await until('the check connected', () => heldCount() > 0, 5_000, 10);
    verifier.stop();
    closeHeld();
    await check;
    // Before the fix: served null, a `mismatch` counted and "does not serve the installed SVID" logged at error.
    expect(verifier.last).toBeNull();
    expect(await checks()).toBe(0);
    expect(errors).toEqual([]);
  });

  test('stop cancels a pending retry', async () => {
    const { verifier, time } = await setup();
    verifier.start();
    await until('the first check', () => verifier.last !== null, 5_000, 10);
    expect(time.pending).toBe(1);
    verifier.stop();
    expect(time.pending).toBe(0);
  });
});
