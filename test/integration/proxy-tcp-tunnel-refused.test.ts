// TCP tunnels whose upstream leg fails before any byte came back (audit 55b F2): the upstream proxy refuses this
// proxy's certificate after the TLS 1.3 handshake (an SVID from a CA it does not trust, an own SVID that expired),
// the upstream refuses the TCP connect, the handshake times out, or the app behind the upstream's proxy is down.
// Each must be counted tessera_requests_total{protocol="tcp",code="502"}, access-logged with its `error`, and
// reach the app as a reset, never as the clean, empty EOF it would take for an answer. Real proxy processes, a
// real TCP echo app, real net clients; a tunnel that works still ends cleanly and counts 200.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { freePort } from '../helpers/free-port.js';
import { metricsText, sumSeries } from '../helpers/prom-metrics.js';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { type MintedSvid, TestCa } from '../helpers/test-ca.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;

let dir: string;
let cleanup: () => Promise<void>;
let ca: TestCa;
let echo: net.Server;
/** Accepts connections and never speaks: a TLS handshake to it times out. */
let silent: net.Server;
const held: net.Socket[] = [];
let api: ProxyProcess;
const callers = new Map<string, ProxyProcess>();
/** "caller/listener" → the port its outbound listener tunnels to. */
const upstreams = new Map<string, number>();
let expiresAtMs = 0;

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

/** A caller proxy with `svid`, trusting `ca` (and `alsoTrusted`), and one outbound tcp listener per `outbounds` entry (name → port). */
async function startCaller(name: string, svid: MintedSvid, outbounds: Record<string, number>, alsoTrusted = ''): Promise<ProxyProcess> {
  await mkdir(join(dir, name), { recursive: true });
  await writeFile(join(dir, name, 'svid.pem'), svid.chainPem);
  await writeFile(join(dir, name, 'key.pem'), svid.keyPem, { mode: 0o600 });
  await writeFile(join(dir, name, 'bundle.pem'), ca.bundlePem() + alsoTrusted);
  for (const [n, port] of Object.entries(outbounds)) upstreams.set(`${name}/${n}`, port);
  const lines = Object.entries(outbounds).map(([n, port]) => `  - { name: ${n}, listen: 127.0.0.1:0, upstream: 127.0.0.1:${port}, spiffeId: ${API}, protocol: tcp }`);
  await writeFile(
    join(dir, `${name}.yaml`),
    [
      'identity:',
      `  files: { certFile: ${name}/svid.pem, keyFile: ${name}/key.pem, bundleFile: ${name}/bundle.pem }`,
      'outbound:',
      ...lines,
      'admin: { listen: 127.0.0.1:0 }',
      `telemetry: { accessLog: ${join(dir, `${name}-access.log`)} }`,
      'limits: { handshakeTimeout: 1s }',
      '',
    ].join('\n'),
  );
  const p = await startProxyProcess(join(dir, `${name}.yaml`));
  callers.set(name, p);
  return p;
}

/**
 * One client of `p`'s outbound `listener`: writes `line` (if any), reads until the connection closes; how it
 * closed. The failing cases write nothing: a proxy that closes a socket with unread bytes makes the kernel send a
 * reset of its own, which would hide the clean close this test is about.
 */
function tunnel(p: ProxyProcess, listener: string, line = ''): Promise<{ got: string; end: string }> {
  return new Promise((resolve) => {
    const s = net.connect(p.ports.get(`outbound/${listener}`)!, '127.0.0.1', () => line && s.write(line));
    let got = '';
    let end = 'clean EOF';
    s.on('data', (d: Buffer) => {
      got += d.toString();
      if (got === 'ping\n') s.end();
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      end = e.code === 'ECONNRESET' ? 'reset' : `error ${e.code}`;
    });
    s.on('close', () => resolve({ got, end }));
  });
}

/**
 * The caller's access-log lines of its outbound `listener` (a TCP line names its upstream, not its listener or
 * status), once `n` are there (up to 3 s: a tunnel is logged as it closes, the log is written in batches).
 */
async function logLines(name: string, listener: string, n: number): Promise<{ error?: string }[]> {
  const upstream = `"upstream":"127.0.0.1:${upstreams.get(`${name}/${listener}`)}"`;
  const deadline = Date.now() + 3_000;
  for (;;) {
    const text = await readFile(join(dir, `${name}-access.log`), 'utf8').catch(() => '');
    const lines = text
      .split('\n')
      .filter((l) => l.includes(upstream))
      .map((l) => JSON.parse(l) as { error?: string });
    if (lines.length >= n || Date.now() > deadline) return lines;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function tcpCodes(p: ProxyProcess, listener: string): Promise<{ ok: number; bad: number }> {
  const text = await metricsText(p.admin);
  const of = (code: string) => sumSeries(text, 'tessera_requests_total', { direction: 'outbound', protocol: 'tcp', listener, code });
  return { ok: of('200'), bad: of('502') };
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  ca = await TestCa.create({ trustDomain: TD });
  echo = net.createServer((s) => {
    s.on('data', (d) => s.write(d));
    s.on('end', () => s.end());
    s.on('error', () => undefined);
  });
  const echoPort = await listen(echo);
  silent = net.createServer((s) => {
    held.push(s);
    s.on('error', () => undefined);
  });
  const silentPort = await listen(silent);
  const deadPort = await freePort();
  await writeSvidFiles(ca, API, join(dir, 'api'));
  await writeFile(
    join(dir, 'api.yaml'),
    [
      'identity:',
      '  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }',
      'inbound:',
      `  - { name: echo, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${echoPort}, protocol: tcp }`,
      `  - { name: down, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${deadPort}, protocol: tcp }`,
      'authorization: { defaultAction: allow }',
      'admin: { listen: 127.0.0.1:0 }',
      'telemetry: { accessLog: off }',
      '',
    ].join('\n'),
  );
  api = await startProxyProcess(join(dir, 'api.yaml'));
  const echoIn = api.ports.get('inbound/echo')!;
  await startCaller('good', await ca.mintSvid(WEB), { echo: echoIn, dead: deadPort, hang: silentPort, down: api.ports.get('inbound/down')! });
  // Its own bundle has both authorities (a proxy refuses to serve an SVID it cannot verify); api's only `ca`.
  const other = await TestCa.create({ trustDomain: TD });
  await startCaller('foreign', await other.mintSvid(WEB), { echo: echoIn }, other.bundlePem());
  // X.509 times are whole seconds: this caller's SVID expires 3 to 4 s from now.
  expiresAtMs = Math.ceil(Date.now() / 1000) * 1000 + 3_000;
  await startCaller('short', await ca.mintSvid(WEB, { notAfter: new Date(expiresAtMs) }), { echo: echoIn });
}, 60_000);

afterAll(async () => {
  await Promise.all([api, ...callers.values()].map((p) => p?.stop()));
  for (const s of held) s.destroy();
  echo?.close();
  silent?.close();
  await cleanup?.();
});

test('a tunnel that works ends cleanly, echoed, and counts 200 without an error', async () => {
  const good = callers.get('good')!;
  expect(await tunnel(good, 'echo', 'ping\n')).toEqual({ got: 'ping\n', end: 'clean EOF' });
  const lines = await logLines('good', 'echo', 1);
  expect(lines).toHaveLength(1);
  expect(lines[0]?.error).toBeUndefined();
  expect(await tcpCodes(good, 'echo')).toEqual({ ok: 1, bad: 0 });
});

test.each([
  ['the upstream proxy refuses its SVID, from a CA it does not trust, after the handshake', 'foreign', 'echo'],
  ['the upstream refuses the TCP connect', 'good', 'dead'],
  ['the TLS handshake times out', 'good', 'hang'],
  ["the app behind the upstream's proxy is down", 'good', 'down'],
])('%s: the app sees a reset, the tunnel counts 502 with its error', async (_case, name, listener) => {
  const p = callers.get(name)!;
  // Before audit 55b F2 the client read a clean, empty EOF in every case, and the refused and the app-down
  // tunnels were counted 200 with no error.
  expect(await tunnel(p, listener)).toEqual({ got: '', end: 'reset' });
  const lines = await logLines(name, listener, 1);
  expect(lines).toHaveLength(1);
  expect(lines[0]?.error).toBe(listener === 'down' ? 'upstream_reset' : 'upstream_unavailable');
  expect(await tcpCodes(p, listener)).toEqual({ ok: 0, bad: 1 });
  if (listener === 'down') {
    // The upstream's proxy counts its own side (before, it never noticed the failed app connect: the tunnel hung).
    const text = await metricsText(api.admin);
    expect(sumSeries(text, 'tessera_requests_total', { direction: 'inbound', protocol: 'tcp', listener: 'down', code: '502' })).toBe(1);
    expect(api.stderr()).toContain('app connection failed');
  }
}, 15_000);

test('a caller whose own SVID expired: the upstream refuses it, the app sees a reset, the tunnel counts 502', async () => {
  const short = callers.get('short')!;
  const wait = expiresAtMs + 1_100 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  for (let i = 0; i < 3; i++) expect(await tunnel(short, 'echo')).toEqual({ got: '', end: 'reset' });
  const lines = await logLines('short', 'echo', 3);
  expect(lines.map((l) => l.error)).toEqual(Array(3).fill('upstream_unavailable'));
  expect(await tcpCodes(short, 'echo')).toEqual({ ok: 0, bad: 3 });
  const text = await metricsText(short.admin);
  expect(sumSeries(text, 'tessera_tls_handshakes_total', { direction: 'outbound', result: 'failure', reason: 'protocol' })).toBe(3);
}, 15_000);
