// The upstream sidecar goes away under open upgraded (WebSocket) connections and TCP tunnels — drained to its drain
// deadline, killed, or banned by the control plane — and the callers' gauges of open things
// (tessera_upgraded_connections, tessera_connections_active, tessera_mux_sessions_active) come back exactly to where
// they were before they first reached it, never below (audit 57c F1: the edge's upgraded gauge went one below per
// upgrade the peer's sidecar cut). Real processes: a control plane, one fresh upstream sidecar per way it goes, and two
// callers ("fronts") with an edge listener (real TLS) and outbound listeners, multiplexed (`front`) and a connection
// per request (`frontp`). The endings of a tunnel from either of its ends: tunnel-gauges-endings.test.ts.
import { afterAll, beforeAll, expect, test } from 'vitest';
import { setBan } from '../helpers/control-plane.js';
import type { ProxyProcess } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { type PathKind, TunnelMesh, type Upstream, gauges, quiet, series, settled } from '../helpers/tunnel-mesh.js';

const UPGRADED = 'tessera_upgraded_connections';
const KINDS: readonly PathKind[] = ['edge', 'outbound', 'tcp'];

let cleanup: () => Promise<void>;
let mesh: TunnelMesh;
const ups = new Map<string, Upstream>();
let front: ProxyProcess;
let frontp: ProxyProcess;

beforeAll(async () => {
  let dir: string;
  ({ dir, cleanup } = await makeTempDir());
  mesh = await TunnelMesh.start(dir);
  for (const u of await Promise.all(['term', 'kill', 'ban'].map((n) => mesh.upstream(`api-${n}`)))) ups.set(u.name, u);
  [front, frontp] = await Promise.all([mesh.front('front', [...ups.values()]), mesh.front('frontp', [...ups.values()], { plain: true })]);
}, 180_000);

afterAll(async () => {
  await mesh?.close();
  await cleanup?.();
});

test.each([
  ['drained to its drain deadline (SIGTERM)', 'term'],
  ['killed (SIGKILL)', 'kill'],
  ['banned by the control plane (its SPIFFE ID)', 'ban'],
] as const)('the upstream sidecar %s under open tunnels: the callers\' gauges come back to their start', async (_what, how) => {
  const up = ups.get(`api-${how}`)!;
  // Before any session or connection to this upstream: each ends with it.
  await quiet([front, frontp]);
  const who = [
    { label: 'front', proxy: front, start: await gauges(front) },
    { label: 'frontp', proxy: frontp, start: await gauges(frontp) },
  ];
  const upStart = await gauges(up.proxy);
  const paths = [...mesh.paths('front', front, up, KINDS), ...mesh.paths('frontp', frontp, up, KINDS)];
  const tunnels = await Promise.all(paths.map((p, i) => p.open(`${how}-${i}`)));
  const [f, p] = await Promise.all(who.map((w) => gauges(w.proxy)));
  const up1 = (g: ReadonlyMap<string, number>, i: number, dir: string) => series(g, UPGRADED, dir) - series(who[i]!.start, UPGRADED, dir);
  expect([up1(f!, 0, 'edge'), up1(f!, 0, 'outbound'), up1(p!, 1, 'edge'), up1(p!, 1, 'outbound')]).toEqual([1, 1, 1, 1]);
  expect(series(await gauges(up.proxy), UPGRADED, 'inbound') - series(upStart, UPGRADED, 'inbound')).toBe(4);
  if (how === 'term') expect(await up.proxy.stop()).toBe(0);
  else if (how === 'kill') up.proxy.child.kill('SIGKILL');
  else await setBan(mesh.cp.dataDir, 'ban', 'spiffe_id', up.id);
  await mesh.closedEverywhere(tunnels);
  // A banned upstream lives on: the callers cut their connections to it, and its own gauges are back too.
  if (how === 'ban') who.push({ label: up.name, proxy: up.proxy, start: upStart });
  // Before 2026-12-07 each edge's upgraded gauge ended one below its start per upgrade (2 for the two edges).
  await settled(who);
}, 120_000);
