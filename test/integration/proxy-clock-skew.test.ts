// A real proxy on a host whose clock is off a real control plane's (audit 52a F1): the proxy runs with its wall clock
// shifted (test/helpers/skewed-clock.ts, preloaded with --import), the control plane issues 35 s SVIDs (ttl 30 s,
// backdate 5 s). Ahead by 0.6 of the lifetime, the proxy renewed at its first look after every answer, once a second
// (the audit: 29 renewals in 30 s, 30 live SVIDs); now it renews once, at half the lifetime by the control plane's
// clock, and says how far its clock is off (tessera_control_plane_clock_offset_seconds, a warn log line).
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { type RunningControlPlane, startControlPlaneProcess, TD, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { metricsText, sumSeries } from '../helpers/prom-metrics.js';
import { type ProxyProcess, startProxyProcess, writeAttestedConfig } from '../helpers/proxy-process.js';
import { makeTempDir, REPO_ROOT } from '../helpers/run.js';
import { until } from '../helpers/until.js';

const LIFETIME_MS = 35_000;
const PRELOAD = pathToFileURL(join(REPO_ROOT, 'test/helpers/skewed-clock.ts')).href;
const LISTENER = 'inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:9 }\n';

let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane;
const proxies: ProxyProcess[] = [];

interface CertRow {
  readonly spiffeId: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly issuedAt: string;
}

/** A proxy for `id` whose wall clock reads the real one + `skewMs`. */
async function skewedProxy(name: string, id: string, skewMs: number): Promise<ProxyProcess> {
  const { configFile } = await writeAttestedConfig(cp, dir, name, id, LISTENER);
  const env = { ...process.env, NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --import=${PRELOAD}`.trim(), TESSERA_TEST_CLOCK_SKEW_MS: String(skewMs) };
  const p = await startProxyProcess(configFile, 25_000, env);
  proxies.push(p);
  return p;
}

/** The live SVIDs of `id` by the control plane's inventory, oldest first. */
async function issued(id: string): Promise<CertRow[]> {
  const rows = await adminRequest<CertRow[]>(cp.dataDir, 'GET', '/v1/certs');
  return rows.filter((r) => r.spiffeId === id).sort((a, b) => Date.parse(a.issuedAt) - Date.parse(b.issuedAt));
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  cp = await startControlPlaneProcess(dir, await writeControlPlaneConfig(dir, 'svid: { ttl: 30s, backdate: 5s }'));
}, 30_000);

afterAll(async () => {
  for (const p of proxies) await p.stop();
  await cp?.stop();
  await cleanup?.();
});

describe('a proxy whose clock is off the control plane', () => {
  test('in step with it: offset 0, nothing told', async () => {
    const p = await skewedProxy('synced', `spiffe://${TD}/ns/default/sa/synced`, 0);
    expect(sumSeries(await metricsText(p.admin), 'tessera_control_plane_clock_offset_seconds')).toBe(0);
    expect(((await (await fetch(`http://127.0.0.1:${p.admin}/certs`)).json()) as { controlPlaneClockOffsetSeconds: number | null }).controlPlaneClockOffsetSeconds).toBe(0);
    expect(p.stdout() + p.stderr()).not.toContain("this host's clock");
    // Each test's proxy is stopped at its end: nothing later uses it, and idle it would renew until the file ends.
    await p.stop();
  });

  test('ahead by 0.6 of the lifetime: one renewal at half the lifetime by the control plane, no loop; the offset is shown', async () => {
    const id = `spiffe://${TD}/ns/default/sa/ahead`;
    const skewMs = 0.6 * LIFETIME_MS;
    const p = await skewedProxy('ahead', id, skewMs);
    await until('the first renewal', async () => sumSeries(await metricsText(p.admin), 'tessera_svid_rotations_total', { result: 'success' }) >= 2, 25_000);
    const [first, second] = await issued(id);
    const renewedAfterMs = Date.parse(second!.issuedAt) - Date.parse(first!.issuedAt);
    // Half the lifetime ± 10 % from NotBefore, the SVID arriving 5 s old: 10.75–14.25 s after the first (was ~1 s).
    expect(renewedAfterMs).toBeGreaterThanOrEqual(0.2 * LIFETIME_MS);
    expect(Date.parse(second!.issuedAt) - Date.parse(first!.notBefore)).toBeLessThanOrEqual(0.65 * LIFETIME_MS);
    const m = await metricsText(p.admin);
    // The least offset the answer proves: the skew, less at most a second and the round trip.
    const offset = sumSeries(m, 'tessera_control_plane_clock_offset_seconds');
    expect(offset).toBeGreaterThan(skewMs / 1000 - 2);
    expect(offset).toBeLessThanOrEqual(skewMs / 1000);
    expect(p.stdout() + p.stderr()).toMatch(/"msg":"this host's clock is 2\d(\.\d)? s ahead of the control plane's \(from its SignSvid answer\)/);
    // Ready: its SVID is valid for peers with the control plane's time, though expired by this host's clock.
    expect((await fetch(`http://127.0.0.1:${p.admin}/ready`)).status).toBe(200);
    await p.stop();
  }, 30_000);

  test('behind by more than the backdate: the answer is held until valid here, then installed; the offset is shown', async () => {
    const id = `spiffe://${TD}/ns/default/sa/behind`;
    // 8 s behind, 3 s past the backdate (also the control plane's own fresh serving SVID is not valid yet here for 3 s).
    const p = await skewedProxy('behind', id, -8_000);
    const offset = sumSeries(await metricsText(p.admin), 'tessera_control_plane_clock_offset_seconds');
    expect(offset).toBeGreaterThanOrEqual(-8);
    expect(offset).toBeLessThan(-6);
    // /certs shows the same estimate beside the renewal it moved.
    const certs = (await (await fetch(`http://127.0.0.1:${p.admin}/certs`)).json()) as { controlPlaneClockOffsetSeconds: number | null };
    expect(certs.controlPlaneClockOffsetSeconds).toBeCloseTo(offset, 1);
    expect(p.stdout() + p.stderr()).toMatch(/"msg":"this host's clock is [678](\.\d)? s behind the control plane's/);
    expect(p.stdout() + p.stderr()).toMatch(/held, installed at [^"]* by this host's clock \(about [678] s behind the control plane's\)/);
    expect((await issued(id)).length).toBe(1);
    await p.stop();
  }, 30_000);

  test('restarted from its state dir with a clock ahead: the kept SVID, expired only by this clock, is renewed, not thrown away (audit 53b F2)', async () => {
    const id = `spiffe://${TD}/ns/default/sa/restarted-ahead`;
    const { configFile } = await writeAttestedConfig(cp, dir, 'restarted', id, LISTENER);
    // The same config with a state dir (writeAttestedConfig gives none).
    const text = (await readFile(configFile, 'utf8')).replace('joinTokenFile: restarted.token }', 'joinTokenFile: restarted.token, stateDir: ./restarted-state }');
    expect(text).toContain('stateDir');
    await writeFile(configFile, text);
    const first = await startProxyProcess(configFile, 25_000);
    expect(await first.stop()).toBe(0);
    const kept = new X509Certificate(await readFile(join(dir, 'restarted-state', 'svid.key.pem')));
    // Ahead by 12 s: restarted once the kept SVID has expired by that clock, while the control plane still takes it
    // (less than the control plane's own serving SVID's renewal margin, which this proxy's clock must not outrun).
    const skewMs = 12_000;
    const restartAt = kept.validToDate.getTime() - skewMs + 1_000;
    await until('the kept SVID has expired by the skewed clock', () => Date.now() >= restartAt, 40_000, 100);
    expect(Date.now()).toBeLessThan(kept.validToDate.getTime() - 3_000);
    const env = { ...process.env, NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --import=${PRELOAD}`.trim(), TESSERA_TEST_CLOCK_SKEW_MS: String(skewMs) };
    const second = await startProxyProcess(configFile, 25_000, env);
    proxies.push(second);
    expect(second.stdout() + second.stderr()).toContain('the persisted SVID has expired by this clock; asking the control plane to renew it before attesting');
    const lines = (await readFile(join(cp.dataDir, 'audit.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { event: string; spiffeId?: string; attestedAs?: string });
    const mine = lines.filter((e) => e.event === 'svid.issued' && e.spiffeId === id);
    // One attestation (the first start's), then a renewal of the kept serial: the spent token was never asked again.
    expect(mine.filter((e) => e.attestedAs?.startsWith('join_token:'))).toHaveLength(1);
    expect(mine.map((e) => e.attestedAs)).toContain(`x509svid:${kept.serialNumber.toLowerCase()}`);
    expect((await fetch(`http://127.0.0.1:${second.admin}/ready`)).status).toBe(200);
  }, 60_000);
});
