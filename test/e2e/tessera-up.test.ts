// `tessera up` end to end, as a newcomer runs it: one command brings up the control plane, the demo apps (web, and
// two replicas of api) and their sidecars; the commands it prints work (allowed web → api with the caller's
// identity, balanced over both api replicas; denied api → web); Ctrl-C drains and stops everything; a second run
// reuses the CA.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { tesseraInProcess } from '../helpers/cli-in-process.js';
import { holdDefaultPorts } from '../helpers/default-ports-lock.js';
import { freeLowPorts, freePort } from '../helpers/free-port.js';
import { startReadyProcess } from '../helpers/ready-process.js';
import { makeTempDir, run } from '../helpers/run.js';

interface UpReplica {
  replica: string;
  appUrl: string;
  inbound: string;
  adminUrl: string;
  outbound: { to: string; url: string }[];
  svidSerial: string;
}

interface UpState {
  trustDomain: string;
  controlPlane: { dataDir: string; admin: string };
  workloads: (Omit<UpReplica, 'replica'> & { name: string; spiffeId: string; service: string; replicas: UpReplica[] })[];
  commands: { name: string; command: string }[];
}

/** The demo app's `instance`, checked against its x-demo-instance header. */
async function demoInstance(res: Response): Promise<string> {
  const body = (await res.json()) as { instance: string };
  expect(res.headers.get('x-demo-instance')).toBe(body.instance);
  return body.instance;
}

/**
 * Which app instances answer requests through `url`: batches of 20 concurrent requests (keep-alive clients under
 * load, as the balancer is meant for) until every one in `want` has answered, bounded.
 */
async function instancesBehind(url: string, want: readonly string[], instanceOf: (res: Response) => Promise<string> = demoInstance): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  // A replica whose first answer was slow (a cold app) is avoided until its latency estimate decays: pause between batches.
  for (let batch = 0; batch < 20 && !want.every((w) => seen.has(w)); batch++) {
    if (batch > 0) await new Promise((r) => setTimeout(r, 500));
    const answers = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const res = await fetch(`${url}/balance-${batch}-${i}`);
        expect(res.status, await res.clone().text()).toBe(200);
        return instanceOf(res);
      }),
    );
    for (const instance of answers) seen.set(instance, (seen.get(instance) ?? 0) + 1);
  }
  return seen;
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

let releasePorts: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  // The docs check of a moved port runs `tessera up` on the same default ports in the other worker: take turns.
  releasePorts = await holdDefaultPorts();
}, 250_000);
afterAll(async () => {
  await Promise.all(running.map((stop) => stop().catch(() => null)));
  await releasePorts?.();
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

  // Two replicas of api, each with its own app and sidecar, one SPIFFE ID, registered as service api; the
  // summary shows both, and web's sidecar balances over them.
  expect(api.service).toBe('api');
  expect(api.replicas.map((r) => r.replica)).toEqual(['api-1', 'api-2']);
  expect(new Set(api.replicas.map((r) => r.inbound)).size).toBe(2);
  expect(new Set(api.replicas.map((r) => r.adminUrl)).size).toBe(2);
  expect(api.adminUrl).toBe(api.replicas[0]!.adminUrl);
  expect(first.stdout()).toContain('service api, 2 replicas');
  for (const r of api.replicas) {
    expect(first.stdout()).toContain(`${r.replica}: SVID expires`);
    expect(first.stdout()).toContain(`inbound ${r.inbound}, admin ${r.adminUrl}`);
  }
  // Each replica's sidecar has its own SVID (its own join token and key) for the same ID.
  expect(new Set(api.replicas.map((r) => r.svidSerial)).size).toBe(2);
  const answered = await instancesBehind(web.outbound.find((o) => o.to === 'api')!.url, ['api-1', 'api-2']);
  expect([...answered.keys()].sort()).toEqual(['api-1', 'api-2']);

  const denied = await fetch(`${api.outbound.find((o) => o.to === 'web')!.url}/hello`);
  expect(denied.status).toBe(403);
  // In-process: the binary runs these two commands below, as printed (why-api-to-web, certs-list).
  const why = await tesseraInProcess(['policy', 'check', '--policies', join(stateDir, 'policies'), '--from', api.spiffeId, '--to', web.spiffeId]);
  expect(why.code).toBe(1);

  const certs = (await (await fetch(`${web.adminUrl}/certs`)).json()) as { serial: string; servedSerial: string };
  expect(certs.servedSerial).toBe(certs.serial);
  const list = await tesseraInProcess(['certs', 'list', '--data-dir', state.controlPlane.dataDir, '--json']);
  expect(list.code).toBe(0);
  expect((JSON.parse(list.stdout) as { serial: string }[]).map((c) => c.serial)).toContain(web.svidSerial);

  // The printed tessera commands run THIS CLI from the user's directory (`npx tessera` there would fetch an
  // unrelated npm package): each works as printed, from any directory (audit 59a F3: relative paths worked only in
  // the one `tessera up` ran in).
  const printed = state.commands.filter((c) => !c.command.startsWith('curl'));
  expect(printed.map((c) => c.name)).toEqual(expect.arrayContaining(['why-web-to-api', 'why-api-to-web', 'certs-list', 'balance-web-to-api']));
  for (const c of printed) {
    expect(c.command).not.toMatch(/\bnpx\b/);
    const r = await run('sh', ['-c', c.command], { cwd: '/' });
    expect(r.code, `${c.command}\n${r.stderr}`).toBe(c.name === 'why-api-to-web' ? 1 : 0);
    // The printed balancing command shows both replicas answering, with their counts.
    if (c.name === 'balance-web-to-api') expect(r.stdout).toMatch(/^\s+\d+\s+"instance": "api-1",\n\s+\d+\s+"instance": "api-2",$/m);
  }

  const bundle1 = await readFile(join(state.controlPlane.dataDir, 'bundle.pem'), 'utf8');
  expect(await first.stop()).toBe(0);

  const second = await up(stateDir);
  expect(await readFile(join(second.state.controlPlane.dataDir, 'bundle.pem'), 'utf8')).toBe(bundle1);
  expect((await fetch(`${second.state.workloads[0]!.outbound[0]!.url}/again`)).status).toBe(200);
  expect(await second.stop()).toBe(0);
  // Every child is gone: nothing answers on the admin, outbound or control-plane ports any more.
  for (const url of [...second.state.workloads.flatMap((w) => w.replicas.flatMap((r) => [r.adminUrl, r.appUrl, ...r.outbound.map((o) => o.url)])), second.state.controlPlane.admin]) {
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  }
}, 150_000);

test('tessera up --config mesh.yaml runs a user topology: own app command with replicas, own policies', async () => {
  // Two replicas of the user's own app: the first gets appPort, the second appPort + 1, each through PORT.
  const port = await freeLowPorts(2);
  const meshDir = join(dir, 'mesh');
  await mkdir(join(meshDir, 'policies'), { recursive: true });
  const app = `require('http').createServer((q, s) => s.end(process.env.TESSERA_REPLICA + ' saw ' + q.headers['x-forwarded-client-cert'])).listen(Number(process.env.PORT), '127.0.0.1')`;
  await writeFile(
    join(meshDir, 'mesh.yaml'),
    ['trustDomain: dev.local', 'svidTtl: 5m', 'workloads:', '  - { name: front, appPort: ' + (await freePort()) + ', outbound: [{ to: back, port: 0 }] }', `  - { name: back, appPort: ${port}, replicas: 2, command: [${JSON.stringify(process.execPath)}, -e, ${JSON.stringify(app)}] }`, 'policiesDir: policies', ''].join('\n'),
  );
  await writeFile(
    join(meshDir, 'policies', 'back.yaml'),
    'apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: back-allow-front }\nspec:\n  selector: spiffe://dev.local/ns/default/sa/back\n  action: ALLOW\n  rules:\n    - from: [spiffe://dev.local/ns/default/sa/front]\n',
  );
  const run = await up(join(meshDir, '.tessera'), ['--config', join(meshDir, 'mesh.yaml')]);
  const front = run.state.workloads.find((w) => w.name === 'front')!;
  const back = run.state.workloads.find((w) => w.name === 'back')!;
  expect(back.replicas.map((r) => r.appUrl)).toEqual([`http://127.0.0.1:${port}`, `http://127.0.0.1:${port + 1}`]);
  const answered = await instancesBehind(front.outbound[0]!.url, ['back-1', 'back-2'], async (res) => {
    const answer = await res.text();
    expect(answer).toMatch(/^back-[12] saw By=spiffe:\/\/dev\.local\/ns\/default\/sa\/back;Hash=[0-9a-f]{64};URI=spiffe:\/\/dev\.local\/ns\/default\/sa\/front$/m);
    return answer.split(' ')[0]!;
  });
  expect([...answered.keys()].sort()).toEqual(['back-1', 'back-2']);
  expect(await run.stop()).toBe(0);
  await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
  await expect(fetch(`http://127.0.0.1:${port + 1}/`)).rejects.toThrow();
}, 120_000);
