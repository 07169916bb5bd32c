// "Verify in use" against a real TLS listener on loopback, timers injected: a check that finds another serial
// served is retried after recheckMs until it matches, and a check that matches leaves no timer behind (an idle
// sidecar's loop is not woken to find nothing to do).
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
  const server = tls.createServer(serve(other), (s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => server.close());
  const time = new FakeTime();
  const verifier = new ServedVerifier({
    identity,
    target: () => ({ host: '127.0.0.1', port: (server.address() as { port: number }).port }),
    metrics: new ProxyMetrics(createProxyRegistry(), { defaultMetrics: false }),
    log: pino({ level: 'silent' }),
    nowMs: () => Date.now(),
    timers: time,
    recheckMs: 5_000,
  });
  cleanups.push(() => verifier.stop());
  return { verifier, time, serveInstalled: () => server.setSecureContext(serve(installed)) };
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

  test('stop cancels a pending retry', async () => {
    const { verifier, time } = await setup();
    verifier.start();
    await until('the first check', () => verifier.last !== null, 5_000, 10);
    expect(time.pending).toBe(1);
    verifier.stop();
    expect(time.pending).toBe(0);
  });
});
