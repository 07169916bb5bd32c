// ControlPlaneMetrics (proxies whose identity comes from a control plane): exactly these names, each in
// docs/metrics.md, the replica gauge and counters read from the endpoints' state, and the clock offset of the last
// SignSvid answer in seconds.
import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { expect, test } from 'vitest';
import type { EndpointsState } from '../../../../proxy/src/identity/control-plane-endpoints.js';
import { ControlPlaneMetrics } from '../../../../proxy/src/telemetry/control-plane-metrics.js';

const NAMES = ['tessera_control_plane_clock_offset_seconds', 'tessera_control_plane_current', 'tessera_control_plane_failbacks_total', 'tessera_control_plane_failovers_total'];

test('registers exactly these metrics, each named in docs/metrics.md', async () => {
  const r = new Registry();
  new ControlPlaneMetrics(r);
  const names = (await r.getMetricsAsJSON()).map((m) => m.name).sort();
  expect(names).toEqual(NAMES);
  const doc = readFileSync(new URL('../../../../docs/metrics.md', import.meta.url), 'utf8');
  expect(names.filter((n) => !doc.includes(`| \`${n}\` |`))).toEqual([]);
});

test('the clock offset: 0 before the first answer, then the last answer\'s, in seconds (negative: behind)', async () => {
  const r = new Registry();
  const m = new ControlPlaneMetrics(r);
  const offset = async () => (await r.getSingleMetric('tessera_control_plane_clock_offset_seconds')!.get()).values[0]?.value;
  expect(await offset()).toBe(0);
  m.clockOffset(3_598_980);
  expect(await offset()).toBe(3_598.98);
  m.clockOffset(-110_000);
  expect(await offset()).toBe(-110);
  m.clockOffset(Number.NaN);
  expect(await offset()).toBe(-110);
});

test('the replica in use and the moves, from the endpoints\' state at scrape time', async () => {
  const r = new Registry();
  const m = new ControlPlaneMetrics(r);
  const state: EndpointsState = { candidates: ['10.0.0.1:8443', '10.0.0.2:8443'], preferred: '10.0.0.1:8443', current: '10.0.0.2:8443', failovers: 1, failbacks: 0 };
  m.observe(() => state);
  const text = await r.metrics();
  expect(text).toContain('tessera_control_plane_current{address="10.0.0.2:8443",preferred="false"} 1');
  expect(text).toContain('tessera_control_plane_current{address="10.0.0.1:8443",preferred="true"} 0');
  expect(text).toContain('tessera_control_plane_failovers_total 1');
});
