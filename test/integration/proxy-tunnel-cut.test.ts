// A tunnel this proxy cuts short is reset on BOTH legs, never closed with a FIN that the far side would read as the
// end of what it was sent (audit 38a F1), and the proxy that cut it at its drain deadline logs it (F2). Real
// processes: a client → web's outbound listeners → mTLS → api's inbound listeners → apps that read to their end of
// input and would then commit what they read (an upload, a bulk load). Two kinds of tunnel: a TCP connection
// (`protocol: tcp`, one mTLS connection each) and an upgraded HTTP/1.1 connection (after the app's 101: a stream of
// the multiplexed transport, or a connection of its own with `transport.multiplex: false`). SIGTERM goes to api
// (inbound) or to web (outbound); resets of either peer, and the total timeout, cross an upgraded connection too.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import * as net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';
import { sinkUpload } from '../helpers/upload-sink.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;

let dir: string;
let cleanup: () => Promise<void>;
let ca: TestCa;
let tcpApp: net.Server;
let httpApp: ReturnType<typeof createServer>;
/** How each app connection ended, by its tag: 'end' (it would commit the upload) or 'reset'. */
const appEnds = new Map<string, string>();
/** Bytes each app connection received, by its tag. */
const appBytes = new Map<string, number>();
/** The apps' upgraded sockets, by tag. */
const appSockets = new Map<string, net.Socket>();
const started: ProxyProcess[] = [];
/** The tags of held-back upgrades (`late-*`) whose app socket has closed. */
const appClosed = new Set<string>();

/** Reads `s` to its end of input, as a "read to EOF, then commit" server does; records how the input ended. */
function sink(s: net.Socket, tagOf: (d: Buffer) => string): void {
  sinkUpload(s, tagOf, appEnds, appBytes);
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  ca = await TestCa.create({ trustDomain: TD });
  tcpApp = net.createServer({ allowHalfOpen: true }, (s) => sink(s, (d) => d.toString('latin1').split('\n')[0]!));
  await new Promise<void>((r) => tcpApp.listen(0, '127.0.0.1', r));
  // Upgrades every request to a raw byte stream, tagged by its path.
  httpApp = createServer();
  httpApp.on('upgrade', (req, s: net.Socket) => {
    const tag = req.url!.slice(1);
    s.allowHalfOpen = true;
    appSockets.set(tag, s);
    // `late-*`: the 101 is held back (the client is to leave before it); the test sees when and how the app's socket closes.
    if (tag.startsWith('late-')) {
      s.on('end', () => appEnds.set(tag, 'end'));
      s.on('error', (e: NodeJS.ErrnoException) => appEnds.set(tag, e.code === 'ECONNRESET' ? 'reset' : `error ${e.code}`));
      return void s.once('close', () => appClosed.add(tag));
    }
    sink(s, () => tag);
    s.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: raw\r\n\r\n');
  });
  await new Promise<void>((r) => httpApp.listen(0, '127.0.0.1', r));
  await mkdir(join(dir, 'policies'));
  await writeFile(join(dir, 'policies', 'api.yaml'), `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow-web }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: [${WEB}]\n`);
}, 30_000);

afterAll(async () => {
  for (const p of started) if (p.child.exitCode === null && p.child.signalCode === null) await p.stop(2_000);
  for (const s of appSockets.values()) s.destroy();
  await new Promise<void>((r) => (tcpApp ? tcpApp.close(() => r()) : r()));
  await new Promise<void>((r) => (httpApp ? httpApp.close(() => r()) : r()));
  await cleanup?.();
});

const portOf = (s: net.Server | ReturnType<typeof createServer>) => (s.address() as net.AddressInfo).port;

/** A proxy's limits, access log and transport lines: `who` names its access log. The tests' upgrades are to `raw`, named. */
const tail = (who: string, transport: string, more = '') => `admin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: ${who}-access.log }\nlimits: { handshakeTimeout: 2s, idleTimeout: 30s, drainTimeout: 1s${more} }\nupgrades: [raw]\n${transport}`;
const files = (who: string) => `identity:\n  files: { certFile: ${who}/svid.pem, keyFile: ${who}/key.pem, bundleFile: ${who}/bundle.pem }\n`;

/** A fresh api (its own files, `<name>-api`): inbound `sink` (tcp) and `app` (HTTP) listeners in front of the apps. */
async function startApi(name: string, transport: string, apiLimits = ''): Promise<ProxyProcess> {
  await writeSvidFiles(ca, API, join(dir, `${name}-api`));
  await writeFile(
    join(dir, `${name}-api.yaml`),
    `${files(`${name}-api`)}inbound:\n  - { name: sink, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${portOf(tcpApp)}, protocol: tcp }\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${portOf(httpApp)} }\nauthorization: { policiesDir: policies }\n${tail(`${name}-api`, transport, apiLimits)}`,
  );
  const api = await startProxyProcess(join(dir, `${name}-api.yaml`));
  started.push(api);
  return api;
}

/** A fresh web (`<name>-web`) in front of `api`: outbound `sink`, `app`, and `timed` (`app` with a total timeout of 1 s). */
async function startWeb(name: string, transport: string, api: ProxyProcess, webLimits = ''): Promise<ProxyProcess> {
  await writeSvidFiles(ca, WEB, join(dir, `${name}-web`));
  const to = (listener: string) => `upstream: 127.0.0.1:${api.ports.get(`inbound/${listener}`)}, spiffeId: ${API}`;
  await writeFile(
    join(dir, `${name}-web.yaml`),
    `${files(`${name}-web`)}outbound:\n  - { name: sink, listen: 127.0.0.1:0, ${to('sink')}, protocol: tcp }\n  - { name: app, listen: 127.0.0.1:0, ${to('app')} }\n  - { name: timed, listen: 127.0.0.1:0, ${to('app')}, timeout: 1s }\n${tail(`${name}-web`, transport, webLimits)}`,
  );
  const web = await startProxyProcess(join(dir, `${name}-web.yaml`));
  started.push(web);
  return web;
}

/** An upload in progress: the client's socket, and how its side ends (`error <code>` or `end`). */
interface Upload {
  readonly socket: net.Socket;
  readonly outcome: Promise<string>;
}

/**
 * An upload through `port` that never finishes: its tag line, then 4 KiB; `upgrade`: after an upgrade request to
 * `/<tag>` and its 101. Resolves once the app has it all (the tunnel is up end to end).
 */
async function openUpload(port: number, tag: string, upgrade: boolean): Promise<Upload> {
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  const outcome = new Promise<string>((resolve) => {
    socket.once('end', () => resolve('end'));
    socket.once('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code}`));
  });
  await new Promise((r) => socket.once('connect', r));
  if (upgrade) {
    socket.write(`GET /${tag} HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: raw\r\n\r\n`);
    const head = await new Promise<Buffer>((r) => socket.once('data', r));
    expect(head.toString('latin1')).toMatch(/^HTTP\/1\.1 101 /);
  }
  socket.on('data', () => undefined);
  const body = Buffer.concat([Buffer.from(`${tag}\n`), Buffer.alloc(4096, 0x61)]);
  socket.write(body);
  await until(`the app has ${tag}'s bytes`, () => appBytes.get(tag) === body.length, 10_000, 20);
  return { outcome, socket };
}

/** How the app's side of `tag` ended, once it has. */
async function appEnd(tag: string): Promise<string> {
  await until(`the app saw how ${tag} ended`, () => appEnds.has(tag), 10_000, 20);
  return appEnds.get(tag)!;
}

interface AccessLine {
  readonly protocol: string;
  readonly direction: string;
  readonly path?: string;
  readonly status?: number;
  readonly responseFlags?: string;
}

async function accessLines(name: string): Promise<AccessLine[]> {
  const text = await readFile(join(dir, `${name}-access.log`), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as AccessLine);
}

describe.each([
  ['the multiplexed transport (default)', 'mux', ''],
  ['multiplex: false', 'plain', 'transport: { multiplex: false }\n'],
])('over %s', (_title, short, transport) => {
  // The resets and the early-leave tests share a pair: neither stops a proxy, and each uses its own tags. Its
  // requestTimeout (20 s, both sides) is the early-leave test's; it bounds nothing the resets test waits for. Its api
  // also serves the webs of the web-drain and idle tests (a proxy start saved each): neither stops or changes api.
  let sharedApiStart: Promise<ProxyProcess> | undefined;
  const sharedApi = () => (sharedApiStart ??= startApi(`${short}-shared`, transport, ', requestTimeout: 20s'));
  let shared: Promise<{ api: ProxyProcess; web: ProxyProcess }> | undefined;
  const sharedPair = () => (shared ??= sharedApi().then(async (api) => ({ api, web: await startWeb(`${short}-shared`, transport, api, ', requestTimeout: 20s') })));
  test.each([
    ['api', 'inbound'],
    ['web', 'outbound'],
  ] as const)('%s drains (%s): a TCP tunnel and an upgraded connection cut at its drain deadline reach both the client and the app as a reset, and it logs both drain_timeout', async (victim, direction) => {
    const name = `${short}-${victim}`;
    // The victim is fresh; when web drains, it is in front of the shared api, which stays up.
    const api = victim === 'api' ? await startApi(name, transport) : await sharedApi();
    const pair = { api, web: await startWeb(name, transport, api) };
    const tcp = await openUpload(pair.web.ports.get('outbound/sink')!, `tcp-${name}`, false);
    const upgraded = await openUpload(pair.web.ports.get('outbound/app')!, `upgraded-${name}`, true);
    // SIGTERM: the victim drains and cuts what is still open at limits.drainTimeout (1 s); exits 0 once it has.
    expect(await pair[victim].stop()).toBe(0);
    // Before 2026-12-06 only the leg the draining proxy had accepted was reset (TCP), or neither (upgraded): the
    // other got a FIN, which reached the app as the end of the upload ("committed 4105" for a half-sent one).
    expect(await appEnd(`tcp-${name}`)).toBe('reset');
    expect(await appEnd(`upgraded-${name}`)).toBe('reset');
    expect(await tcp.outcome).toBe('error ECONNRESET');
    expect(await upgraded.outcome).toBe('error ECONNRESET');
    tcp.socket.destroy();
    upgraded.socket.destroy();
    // Before 2026-12-06 the draining proxy closed its access log before the TCP tunnel's record was written (it
    // waited for the accepted leg's close only): no line, no count.
    const lines = await accessLines(`${name}-${victim}`);
    expect(lines.filter((l) => l.protocol === 'tcp')).toEqual([expect.objectContaining({ direction, responseFlags: 'drain_timeout' })]);
    expect(lines.find((l) => l.path === `/upgraded-${name}`)).toMatchObject({ direction, status: 101, responseFlags: 'drain_timeout' });
  }, 40_000);

  test("an upgraded connection: the client's reset reaches the app as a reset, the app's reaches the client, and the total timeout resets both legs", async () => {
    const pair = await sharedPair();
    const out = pair.web.ports.get('outbound/app')!;
    // Before 2026-12-06 each of these reached the other side as a FIN: the end of an upload, or of a download.
    const byClient = await openUpload(out, `client-resets-${short}`, true);
    byClient.socket.resetAndDestroy();
    expect(await appEnd(`client-resets-${short}`)).toBe('reset');

    const byApp = await openUpload(out, `app-resets-${short}`, true);
    appSockets.get(`app-resets-${short}`)!.resetAndDestroy();
    expect(await byApp.outcome).toBe('error ECONNRESET');
    byApp.socket.destroy();

    const timed = await openUpload(pair.web.ports.get('outbound/timed')!, `total-timeout-${short}`, true);
    expect(await timed.outcome).toBe('error ECONNRESET'); // at the listener's timeout (1 s)
    expect(await appEnd(`total-timeout-${short}`)).toBe('reset');
    timed.socket.destroy();
  }, 40_000);

  test('an upgraded connection cut at the stream idle timeout reaches both the client and the app as an orderly end', async () => {
    // Only web (outbound) has the short stream idle timeout: it makes the cut, api passes it on.
    const web = await startWeb(`${short}-idle`, transport, await sharedApi(), ', streamIdleTimeout: 1s');
    const idle = await openUpload(web.ports.get('outbound/app')!, `idle-${short}`, true);
    // Before 2026-12-06 (audit 40b F4) web destroyed its mux stream: a stream reset, which api passed on to the app
    // as an RST, while the client (and, with multiplex: false, the app) read a FIN.
    expect(await idle.outcome).toBe('end');
    expect(await appEnd(`idle-${short}`)).toBe('end');
    idle.socket.destroy();
  }, 40_000);

  test("an upgrade request whose client leaves before the app's 101 (half-close or reset) closes the app's connection at once, with a reset", async () => {
    // requestTimeout 20 s (sharedPair): before 2026-12-06 (audit 40b F1) the answer was read into the void for that
    // long, and the app's connection stayed open (its 101 opening a tunnel nobody was on); 5 s is well short of it.
    const pair = await sharedPair();
    const port = pair.web.ports.get('outbound/app')!;
    for (const how of ['fin', 'rst'] as const) {
      const tag = `late-${how}-${short}`;
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.on('error', () => undefined);
      await new Promise((r) => socket.once('connect', r));
      socket.write(`GET /${tag} HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: raw\r\n\r\n`);
      await until(`the app has ${tag}'s upgrade request`, () => appSockets.has(tag), 10_000, 20);
      if (how === 'fin') socket.end();
      else socket.resetAndDestroy();
      await until(`the app's connection of ${tag} closed`, () => appClosed.has(tag), 5_000, 20);
      expect(appEnds.get(tag)).toBe('reset');
      socket.destroy();
    }
    const late = async () => (await accessLines(`${short}-shared-web`)).filter((l) => l.path?.startsWith('/late-'));
    await until('web logged both', async () => (await late()).length === 2, 10_000, 50);
    expect(await late()).toEqual([expect.objectContaining({ status: 499 }), expect.objectContaining({ status: 499 })]);
  }, 40_000);
});
