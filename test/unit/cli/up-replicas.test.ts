// `tessera up`'s replicas, in the parts that need no process: mesh.yaml's replicas key, the ports each replica
// asks for, the sidecar's /endpoints view read for the ready wait, and the summary that shows every replica.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { discoveredCount, type LaunchedMesh } from '../../../cli/up/launch-mesh.js';
import { defaultMesh, loadMeshFile, replicaName, replicaPort } from '../../../cli/up/mesh-spec.js';
import { buildState, renderSummary } from '../../../cli/up/summary.js';
import type { ProcessSupervisor } from '../../../shared-io/process-supervisor.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'up-replicas-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function meshFile(body: string): Promise<string> {
  const file = join(dir, `mesh-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(file, body);
  return file;
}

describe('mesh.yaml replicas', () => {
  test('defaults to one replica; replicas: N is kept', async () => {
    const spec = await loadMeshFile(await meshFile('workloads:\n  - { name: front, appPort: 19001, outbound: [{ to: back, port: 0 }] }\n  - { name: back, appPort: 19002, replicas: 3 }\n'), async () => ({}));
    expect(spec.workloads.map((w) => [w.name, w.replicas])).toEqual([['front', 1], ['back', 3]]);
  });

  test.each([
    ['replicas: 0', '  - { name: back, appPort: 19002, replicas: 0 }\n'],
    ['replicas: 1.5', '  - { name: back, appPort: 19002, replicas: 1.5 }\n'],
    ['a name that cannot be a service name', '  - { name: Back_End, appPort: 19002 }\n'],
    ['a name ending in "-"', '  - { name: back-, appPort: 19002 }\n'],
    ['two workloads of one name', '  - { name: back, appPort: 19002 }\n  - { name: back, appPort: 19003 }\n'],
  ])('refuses %s', async (_what, workloads) => {
    await expect(loadMeshFile(await meshFile(`workloads:\n${workloads}`), async () => ({}))).rejects.toMatchObject({ code: 'TESSERA_ERR_CONFIG_INVALID' });
  });

  // Audit 61d F2: these two named the file only.
  test('a second workload of one name, and an outbound to an unknown workload, name file, line and key', async () => {
    const dup = await meshFile('workloads:\n  - { name: back, appPort: 19002 }\n  - name: front\n    appPort: 19001\n  - name: back\n    appPort: 19003\n');
    await expect(loadMeshFile(dup, async () => ({}))).rejects.toMatchObject({ code: 'TESSERA_ERR_CONFIG_INVALID', message: `${dup}:5: workloads[2].name: "back" is the name of an earlier workload (use replicas: N for copies of one)`, details: { file: dup, line: 5, key: 'workloads[2].name' } });
    const to = await meshFile('workloads:\n  - name: front\n    appPort: 19001\n    outbound:\n      - { to: back, port: 0 }\n      - { to: zz, port: 0 }\n  - { name: back, appPort: 19002 }\n');
    await expect(loadMeshFile(to, async () => ({}))).rejects.toMatchObject({ message: `${to}:6: workloads[0].outbound[1].to: workload "front" has an outbound to unknown workload "zz"`, details: { key: 'workloads[0].outbound[1].to' } });
  });

  test('a workload cwd that does not exist is refused at load, naming file, line and key (not "spawn node ENOENT" at start)', async () => {
    const file = await meshFile('workloads:\n  - { name: front, appPort: 19001 }\n  - name: back\n    command: [node, server.js]\n    cwd: ./backend-missing\n    appPort: 19002\n');
    const err = (await loadMeshFile(file, async () => ({})).catch((e: unknown) => e)) as { code: string; message: string };
    expect(err.code).toBe('TESSERA_ERR_CONFIG_INVALID');
    expect(err.message).toBe(`${file}:5: workloads[1].cwd: ${join(dir, 'backend-missing')} is not a directory (relative to the mesh file's directory)`);
    await mkdir(join(dir, 'backend-missing'));
    expect((await loadMeshFile(file, async () => ({}))).workloads[1]!.cwd).toBe(join(dir, 'backend-missing'));
  });

  test('the embedded default runs two replicas of api and one of web', () => {
    expect(defaultMesh().workloads.map((w) => [w.name, w.replicas])).toEqual([['web', 1], ['api', 2]]);
  });

  test('replica names and ports: one replica keeps the name and ports; more count up', () => {
    expect(replicaName({ name: 'api', replicas: 1 }, 0)).toBe('api');
    expect([0, 1, 2].map((i) => replicaName({ name: 'api', replicas: 3 }, i))).toEqual(['api-1', 'api-2', 'api-3']);
    expect([0, 1, 2].map((i) => replicaPort(18081, i, 'app'))).toEqual([18081, 18082, 18083]);
    expect([0, 1, 2].map((i) => replicaPort(15106, i, 'sidecar'))).toEqual([15106, 15116, 15126]);
    expect(replicaPort(0, 2, 'sidecar')).toBe(0);
  });

  test('the default mesh asks for no port twice', () => {
    const wanted: number[] = [];
    const spec = defaultMesh();
    wanted.push(spec.controlPlane.grpcPort, spec.controlPlane.adminPort);
    for (const w of spec.workloads) {
      for (let i = 0; i < w.replicas; i++) {
        wanted.push(replicaPort(w.appPort, i, 'app'), replicaPort(w.inboundPort, i, 'sidecar'), replicaPort(w.adminPort, i, 'sidecar'), ...w.outbound.map((o) => replicaPort(o.port, i, 'sidecar')));
      }
    }
    expect(new Set(wanted).size).toBe(wanted.length);
  });
});

describe('discoveredCount (the /endpoints view)', () => {
  const ep = { address: '127.0.0.1:15106', spiffeId: 'spiffe://tessera.local/ns/default/sa/api', state: 'ready' };
  test.each([
    ['service → list', { api: [ep, ep] }, 2],
    ['draining, ejected and not-ready endpoints are not counted', { api: [ep, { ...ep, state: 'draining' }, { ...ep, state: 'ejected' }, { ...ep, state: 'not_ready' }] }, 1],
    ['service → { endpoints }', { api: { endpoints: [ep] } }, 1],
    ['under services', { services: { api: { endpoints: [ep, ep, ep] } } }, 3],
    ['another service only', { web: [ep] }, null],
    ['not an object', 'nope', null],
    ['null', null, null],
  ])('%s', (_what, view, n) => {
    expect(discoveredCount(view, 'api')).toBe(n);
  });
});

describe('summary', () => {
  test('shows the service with its replica count and every replica', () => {
    const spec = defaultMesh();
    const replica = (name: string, n: number) => ({
      replica: name,
      appUrl: `http://127.0.0.1:1808${n}`,
      inbound: `127.0.0.1:151${n}6`,
      adminUrl: `http://127.0.0.1:151${n}0`,
      outbound: [{ to: 'web', url: `http://127.0.0.1:151${n}1` }],
      svidNotAfter: '2026-12-03T14:21:42.000Z',
      svidSerial: `${n}`.repeat(32),
    });
    const apis = [replica('api-1', 1), replica('api-2', 2)];
    const web = { ...replica('web', 0), adminUrl: 'http://127.0.0.1:15000', outbound: [{ to: 'api', url: 'http://127.0.0.1:15001' }] };
    const { replica: _w, ...webTop } = web;
    const { replica: _a, ...apiTop } = apis[0]!;
    const mesh: LaunchedMesh = {
      stateDir: '/s',
      dataDir: '/s/control-plane',
      policiesDir: '/s/policies',
      grpc: '127.0.0.1:18443',
      adminUrl: 'http://127.0.0.1:18444',
      workloads: [
        { name: 'web', spiffeId: 'spiffe://tessera.local/ns/default/sa/web', service: 'web', ...webTop, replicas: [web] },
        { name: 'api', spiffeId: 'spiffe://tessera.local/ns/default/sa/api', service: 'api', ...apiTop, replicas: apis },
      ],
      portMoves: [],
      supervisor: { pids: () => [] } as unknown as ProcessSupervisor,
    };
    const state = buildState(spec, mesh, 'tessera');
    const text = renderSummary(spec, state, '/');
    const lines = [
      'web    spiffe://tessera.local/ns/default/sa/web  service web, 1 replica\n',
      'api    spiffe://tessera.local/ns/default/sa/api  service api, 2 replicas\n',
      'api-1: SVID expires 14:21:42Z (serial 11111111111111111111111111111111); app http://127.0.0.1:18081, inbound 127.0.0.1:15116, admin http://127.0.0.1:15110',
      'api-2: SVID expires 14:21:42Z (serial 22222222222222222222222222222222); app http://127.0.0.1:18082, inbound 127.0.0.1:15126, admin http://127.0.0.1:15120',
      'api-2: outbound to web: http://127.0.0.1:15121',
      // One replica: no replica name in its lines.
      '         SVID expires 14:21:42Z (serial 00000000000000000000000000000000); app http://127.0.0.1:18080',
    ];
    for (const line of lines) expect(text).toContain(line);
    const balance = state.commands.find((c) => c.name === 'balance-web-to-api');
    expect(balance?.command).toBe(`seq 20 | xargs -P 10 -I{} curl -s http://127.0.0.1:15001/hello | grep '"instance"' | sort | uniq -c`);
    expect(state.commands.find((c) => c.name === 'endpoints-web-to-api')?.command).toBe('curl -s http://127.0.0.1:15000/endpoints');
    // api → web: web has one replica, nothing to balance.
    expect(state.commands.some((c) => c.name === 'balance-api-to-web')).toBe(false);
    // Paths are absolute: the commands run as printed from any directory, and up.json's from any script (audit 59a F3).
    expect(state.commands.find((c) => c.name === 'why-web-to-api')?.command).toBe(
      'tessera policy check --policies /s/policies --from spiffe://tessera.local/ns/default/sa/web --to spiffe://tessera.local/ns/default/sa/api',
    );
    expect(state.commands.find((c) => c.name === 'certs-list')?.command).toBe('tessera certs list --data-dir /s/control-plane');
    // An app of your own command need not echo headers or name its instance (audit 59a I4): no promise of either.
    const own = { ...spec, workloads: spec.workloads.map((w) => (w.name === 'api' ? { ...w, command: ['node', 'server.js'] } : w)) };
    const ownState = buildState(own, mesh, 'tessera');
    expect(ownState.commands.some((c) => c.name === 'balance-web-to-api')).toBe(false);
    expect(ownState.commands.some((c) => c.name === 'endpoints-web-to-api')).toBe(true);
    expect(ownState.commands.find((c) => c.name === 'web-to-api')?.description).not.toContain('x-forwarded-client-cert');
    expect(state.commands.find((c) => c.name === 'web-to-api')?.description).toContain('x-forwarded-client-cert');
  });
});
