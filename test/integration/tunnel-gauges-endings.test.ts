// The proxies' gauges of open things (tessera_upgraded_connections, tessera_connections_active,
// tessera_mux_sessions_active) come back exactly to where they started, never below, whichever way an upgraded
// (WebSocket) connection or a TCP/CONNECT tunnel ends: the app's FIN or reset, the client's FIN or reset, the total
// timeout, and the caller's proxy cut at its drain deadline, killed or banned (audit 57c F1). Real processes: a
// control plane, the upstream sidecar `api` in front of the apps, and callers ("fronts"), each with an edge listener
// (real TLS), outbound listeners and a forward proxy, multiplexed (`front`) and a connection per request (`frontp`).
// The upstream sidecar drained, killed or banned under the callers: tunnel-gauges-upstream-cuts.test.ts.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { setBan } from '../helpers/control-plane.js';
import type { ProxyProcess } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { type PathKind, type Tunnel, type TunnelPath, TunnelMesh, type Upstream, frontId, gauges, quiet, series, settled } from '../helpers/tunnel-mesh.js';

const UPGRADED = 'tessera_upgraded_connections';

let cleanup: () => Promise<void>;
let mesh: TunnelMesh;
let api: Upstream;
let front: ProxyProcess;
let frontp: ProxyProcess;
let seq = 0;

/** Every way through a multiplexed and a plain front that ends on its own, or at the total timeout (`timed`). */
const OPEN: readonly PathKind[] = ['edge', 'outbound', 'tcp', 'forward', 'connect'];
const TIMED: readonly PathKind[] = ['edge-timed', 'outbound-timed'];
const pathsOf = (kinds: readonly PathKind[]): TunnelPath[] => [
  ...mesh.paths('front', front, api, kinds),
  ...mesh.paths('frontp', frontp, api, kinds.filter((k) => k !== 'forward' && k !== 'connect')),
];
const openAll = (paths: readonly TunnelPath[], what: string) => Promise.all(paths.map((p) => p.open(`${what.replace(/\W+/g, '-')}-${++seq}`)));

beforeAll(async () => {
  let dir: string;
  ({ dir, cleanup } = await makeTempDir());
  mesh = await TunnelMesh.start(dir);
  api = await mesh.upstream('api', { service: true });
  [front, frontp] = await Promise.all([mesh.front('front', [api], { forward: true }), mesh.front('frontp', [api], { plain: true })]);
  await mesh.routable(front);
  // Every session and pool each way uses is dialed once (and stays, idleTimeout 5 m): gauges start where they stay.
  const warm = await openAll(pathsOf([...OPEN, ...TIMED]), 'warm');
  for (const t of warm) t.socket.end();
  await mesh.closedEverywhere(warm);
}, 180_000);

afterAll(async () => {
  await mesh?.close();
  await cleanup?.();
});

const ENDINGS: readonly (readonly [string, (t: Tunnel) => void, readonly PathKind[]])[] = [
  ["the app's FIN (the client then finishes too)", (t) => mesh.apps.sockets.get(t.tag)!.end(), OPEN],
  ["the app's reset", (t) => mesh.apps.sockets.get(t.tag)!.resetAndDestroy(), OPEN],
  ["the client's FIN (the app then finishes too)", (t) => t.socket.end(), OPEN],
  ["the client's reset", (t) => t.raw.resetAndDestroy(), OPEN],
  ['the total timeout (the route or listener `timeout`)', () => undefined, TIMED],
];

describe('an upgraded connection or a tunnel ends on its own: every gauge of every proxy on its way comes back to its start', () => {
  test.each(ENDINGS)('%s', async (what, end, kinds) => {
    await quiet([front, frontp, api.proxy]);
    const who = [
      { label: 'front', proxy: front, start: await gauges(front) },
      { label: 'frontp', proxy: frontp, start: await gauges(frontp) },
      { label: 'api', proxy: api.proxy, start: await gauges(api.proxy) },
    ];
    const tunnels = await openAll(pathsOf(kinds), what);
    // Counted once each while open: front's edge and outbound (and its forward proxy), frontp's, api's inbound.
    const [f, p, a] = await Promise.all(who.map((w) => gauges(w.proxy)));
    const up = (g: ReadonlyMap<string, number>, w: (typeof who)[number], dir: string) => series(g, UPGRADED, dir) - series(w.start, UPGRADED, dir);
    const forward = kinds.includes('forward') ? 1 : 0;
    expect([up(f!, who[0]!, 'edge'), up(f!, who[0]!, 'outbound'), up(p!, who[1]!, 'edge'), up(p!, who[1]!, 'outbound'), up(a!, who[2]!, 'inbound')]).toEqual([1, 1 + forward, 1, 1, 4 + forward]);
    for (const t of tunnels) end(t);
    await mesh.closedEverywhere(tunnels);
    // Before 2026-12-07 the app's reset and the total timeout took the edge's upgraded gauge (and api's, for
    // frontp's tunnels: a caller on its own TLS connection) one below where it started, per tunnel, for good.
    await settled(who);
  }, 90_000);
});

describe("the caller's proxy is cut with tunnels open: the upstream's gauges (and a banned caller's own) come back to their start", () => {
  test.each([
    ['drained to its drain deadline (SIGTERM)', 'term'],
    ['killed (SIGKILL)', 'kill'],
    ['banned by the control plane (its SPIFFE ID)', 'ban'],
  ] as const)('%s', async (_what, how) => {
    await quiet([front, frontp, api.proxy]);
    const apiStart = await gauges(api.proxy);
    // Fresh callers, multiplexed and not: what they held of api (their sessions) ends with them.
    const names = [`${how}-mux`, `${how}-plain`];
    const victims = await Promise.all(names.map((n, i) => mesh.front(n, [api], i === 0 ? { forward: true } : { plain: true })));
    const starts = await Promise.all(victims.map((v) => gauges(v)));
    await mesh.routable(victims[0]!);
    const paths = victims.flatMap((v, i) => mesh.paths(names[i]!, v, api, i === 0 ? OPEN : ['edge', 'outbound', 'tcp']));
    const tunnels = await openAll(paths, how);
    expect(series(await gauges(api.proxy), UPGRADED, 'inbound') - series(apiStart, UPGRADED, 'inbound')).toBe(5);
    if (how === 'term') expect(await Promise.all(victims.map((v) => v.stop()))).toEqual([0, 0]);
    else if (how === 'kill') for (const v of victims) v.child.kill('SIGKILL');
    else for (const n of names) await setBan(mesh.cp.dataDir, 'ban', 'spiffe_id', frontId(n));
    await mesh.closedEverywhere(tunnels);
    const who = [{ label: 'api', proxy: api.proxy, start: apiStart }];
    // A banned caller lives on: api cut its connections, and its own gauges are back too (its edge's were not).
    if (how === 'ban') who.push(...victims.map((v, i) => ({ label: names[i]!, proxy: v, start: starts[i]! })));
    await settled(who);
  }, 120_000);
});
