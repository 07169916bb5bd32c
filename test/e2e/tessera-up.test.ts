// `tessera up` end to end, as a newcomer runs it: one command brings up the control plane, two demo apps and
// their sidecars; the commands it prints work (allowed web → api with the caller's identity, denied api → web);
// Ctrl-C drains and stops everything; a second run reuses the CA.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startReadyProcess } from '../helpers/ready-process.js';
import { makeTempDir, run, tessera } from '../helpers/run.js';

interface UpState {
  trustDomain: string;
  controlPlane: { dataDir: string; admin: string };
  workloads: { name: string; spiffeId: string; adminUrl: string; outbound: { to: string; url: string }[]; svidSerial: string }[];
  commands: { name: string; command: string }[];
}

let dir: string;
let cleanup: () => Promise<void>;

async function up(stateDir: string, extra: string[] = [], cwd?: string): Promise<{ state: UpState; stdout: () => string; stop: () => Promise<number | null> }> {
  const p = await startReadyProcess(['up', '--state-dir', stateDir, ...extra], 'tessera up: ready', { timeoutMs: 60_000, ...(cwd ? { cwd } : {}) });
  const state = JSON.parse(await readFile(join(stateDir, 'up.json'), 'utf8')) as UpState;
  // Ctrl-C, as a user stops it.
  const stop = () => p.stop(30_000, 'SIGINT');
  running.push(stop);
  return { state, stdout: p.stdout, stop };
}

/** Every `tessera up` started here: stopped after the tests even when an assertion ended one early. */
const running: (() => Promise<number | null>)[] = [];

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
});
afterAll(async () => {
  await Promise.all(running.map((stop) => stop().catch(() => null)));
  await cleanup?.();
});

test('tessera up: the printed commands show the mesh working, Ctrl-C stops cleanly, the CA is reused', async () => {
  const stateDir = join(dir, 'state');
  // Run where a user would: in their own directory, outside the repository.
  const first = await up(stateDir, [], dir);
  const { state } = first;
  expect(state.trustDomain).toBe('tessera.local');
  const web = state.workloads.find((w) => w.name === 'web')!;
  const api = state.workloads.find((w) => w.name === 'api')!;
  expect(first.stdout()).toContain(web.spiffeId);

  const allowed = await fetch(`${web.outbound.find((o) => o.to === 'api')!.url}/hello`);
  expect(allowed.status).toBe(200);
  const body = (await allowed.json()) as { app: string; headers: Record<string, string> };
  expect(body.app).toBe('api');
  expect(body.headers['x-forwarded-client-cert']).toContain(`URI=${web.spiffeId}`);

  const denied = await fetch(`${api.outbound.find((o) => o.to === 'web')!.url}/hello`);
  expect(denied.status).toBe(403);
  const why = await tessera(['policy', 'check', '--policies', join(stateDir, 'policies'), '--from', api.spiffeId, '--to', web.spiffeId]);
  expect(why.code).toBe(1);

  const certs = (await (await fetch(`${web.adminUrl}/certs`)).json()) as { serial: string; servedSerial: string };
  expect(certs.servedSerial).toBe(certs.serial);
  const list = await tessera(['certs', 'list', '--data-dir', state.controlPlane.dataDir, '--json']);
  expect(list.code).toBe(0);
  expect((JSON.parse(list.stdout) as { serial: string }[]).map((c) => c.serial)).toContain(web.svidSerial);

  // The printed tessera commands run THIS CLI from the user's directory (`npx tessera` there would fetch an
  // unrelated npm package): each works as printed, in the directory `tessera up` ran in.
  const printed = state.commands.filter((c) => !c.command.startsWith('curl'));
  expect(printed.map((c) => c.name)).toEqual(expect.arrayContaining(['why-web-to-api', 'why-api-to-web', 'certs-list']));
  for (const c of printed) {
    expect(c.command).not.toMatch(/\bnpx\b/);
    const r = await run('sh', ['-c', c.command], { cwd: dir });
    expect(r.code, `${c.command}\n${r.stderr}`).toBe(c.name === 'why-api-to-web' ? 1 : 0);
  }

  const bundle1 = await readFile(join(state.controlPlane.dataDir, 'bundle.pem'), 'utf8');
  expect(await first.stop()).toBe(0);

  const second = await up(stateDir);
  expect(await readFile(join(second.state.controlPlane.dataDir, 'bundle.pem'), 'utf8')).toBe(bundle1);
  expect((await fetch(`${second.state.workloads[0]!.outbound[0]!.url}/again`)).status).toBe(200);
  expect(await second.stop()).toBe(0);
  // Every child is gone: nothing answers on the admin, outbound or control-plane ports any more.
  for (const url of [...second.state.workloads.flatMap((w) => [w.adminUrl, ...w.outbound.map((o) => o.url)]), second.state.controlPlane.admin]) {
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  }
}, 150_000);

test('tessera up --config mesh.yaml runs a user topology: own app command, own policies', async () => {
  const port = await freePort();
  const meshDir = join(dir, 'mesh');
  await mkdir(join(meshDir, 'policies'), { recursive: true });
  const app = `require('http').createServer((q, s) => s.end('backend saw ' + q.headers['x-forwarded-client-cert'])).listen(${port}, '127.0.0.1')`;
  await writeFile(
    join(meshDir, 'mesh.yaml'),
    ['trustDomain: dev.local', 'svidTtl: 5m', 'workloads:', '  - { name: front, appPort: ' + (await freePort()) + ', outbound: [{ to: back, port: 0 }] }', `  - { name: back, appPort: ${port}, command: [${JSON.stringify(process.execPath)}, -e, ${JSON.stringify(app)}] }`, 'policiesDir: policies', ''].join('\n'),
  );
  await writeFile(
    join(meshDir, 'policies', 'back.yaml'),
    'apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: back-allow-front }\nspec:\n  selector: spiffe://dev.local/ns/default/sa/back\n  action: ALLOW\n  rules:\n    - from: [spiffe://dev.local/ns/default/sa/front]\n',
  );
  const run = await up(join(meshDir, '.tessera'), ['--config', join(meshDir, 'mesh.yaml')]);
  const front = run.state.workloads.find((w) => w.name === 'front')!;
  const answer = await (await fetch(`${front.outbound[0]!.url}/`)).text();
  expect(answer).toMatch(/^backend saw By=spiffe:\/\/dev\.local\/ns\/default\/sa\/back;Hash=[0-9a-f]{64};URI=spiffe:\/\/dev\.local\/ns\/default\/sa\/front$/m);
  expect(await run.stop()).toBe(0);
  await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
}, 120_000);

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}
