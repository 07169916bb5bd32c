// A caller whose certificate the upstream refuses counts that handshake as a failure, not a success (an outside
// audit: with TLS 1.3 the client finishes before the server has judged its certificate, and the caller counted
// success and logged nothing while its requests got 502). Real proxy processes: a Tessera upstream (which refuses
// silently, by closing: reason `protocol`) and an OpenSSL s_server (which sends an alert: `unknown_ca`,
// `expired`), each called by a proxy whose SVID comes from an untrusted CA and by one whose own SVID expired;
// a caller with a good SVID still counts one success per connection.
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { SupervisedProcess } from '../../shared-io/process-supervisor.js';
import { freePort } from '../helpers/free-port.js';
import { metricsText, sumSeries } from '../helpers/prom-metrics.js';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { startTestProcess } from '../helpers/ready-process.js';
import { makeTempDir } from '../helpers/run.js';
import { type MintedSvid, TestCa } from '../helpers/test-ca.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;

let dir: string;
let cleanup: () => Promise<void>;
let ca: TestCa;
let app: ReturnType<typeof createServer>;
let api: ProxyProcess;
let strict: SupervisedProcess;
let strictPort = 0;
/** A loopback port nothing listens on. */
let deadPort = 0;
const callers: ProxyProcess[] = [];
let expiresAtMs = 0;

/** A caller proxy named `name` with `svid` (trusting `ca`, and `alsoTrusted`), outbound listeners `tessera` and `strict`. */
async function startCaller(name: string, svid: MintedSvid, alsoTrusted = ''): Promise<ProxyProcess> {
  await mkdir(join(dir, name), { recursive: true });
  await writeFile(join(dir, name, 'svid.pem'), svid.chainPem);
  await writeFile(join(dir, name, 'key.pem'), svid.keyPem, { mode: 0o600 });
  await writeFile(join(dir, name, 'bundle.pem'), ca.bundlePem() + alsoTrusted);
  await writeFile(
    join(dir, `${name}.yaml`),
    [
      'identity:',
      `  files: { certFile: ${name}/svid.pem, keyFile: ${name}/key.pem, bundleFile: ${name}/bundle.pem }`,
      'outbound:',
      `  - { name: tessera, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/app')}, spiffeId: ${API} }`,
      `  - { name: strict, listen: 127.0.0.1:0, upstream: 127.0.0.1:${strictPort}, spiffeId: ${API} }`,
      `  - { name: dead, listen: 127.0.0.1:0, upstream: 127.0.0.1:${deadPort}, spiffeId: ${API} }`,
      'admin: { listen: 127.0.0.1:0 }',
      'telemetry: { accessLog: off }',
      '',
    ].join('\n'),
  );
  const p = await startProxyProcess(join(dir, `${name}.yaml`));
  callers.push(p);
  return p;
}

async function get(p: ProxyProcess, listener: string): Promise<{ status: number; error: string | null }> {
  const res = await fetch(`http://127.0.0.1:${p.ports.get(`outbound/${listener}`)}/`);
  await res.text();
  return { status: res.status, error: res.headers.get('x-tessera-error') };
}

async function outbound(p: ProxyProcess): Promise<{ success: number; failures: (reason: string) => number }> {
  const text = await metricsText(p.admin);
  return {
    success: sumSeries(text, 'tessera_tls_handshakes_total', { direction: 'outbound', result: 'success' }),
    failures: (reason) => sumSeries(text, 'tessera_tls_handshakes_total', { direction: 'outbound', result: 'failure', reason }),
  };
}

/** Waits (up to 3 s) for the refusal to be counted: it is judged when the upstream closes or alerts. */
async function settled(p: ProxyProcess, reason: string): Promise<void> {
  const deadline = Date.now() + 3_000;
  while ((await outbound(p)).failures(reason) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

function warnLines(p: ProxyProcess): { reason: string; detail: string }[] {
  return p
    .stderr()
    .split('\n')
    .filter((l) => l.includes('"upstream handshake failed"'))
    .map((l) => JSON.parse(l) as { reason: string; detail: string });
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  ca = await TestCa.create({ trustDomain: TD });
  app = createServer((_req, res) => res.end('app-bytes'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  await writeSvidFiles(ca, API, join(dir, 'api'));
  await writeFile(
    join(dir, 'api.yaml'),
    `identity:\n  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }\ninbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${(app.address() as AddressInfo).port} }\nauthorization: { defaultAction: allow }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n`,
  );
  api = await startProxyProcess(join(dir, 'api.yaml'));
  // An mTLS server that lets OpenSSL judge the client certificate, so a refusal is a TLS alert naming the fault
  // (Node's rejectUnauthorized, like Tessera, closes without one).
  const served = await ca.mintSvid(API);
  await mkdir(join(dir, 'strict'));
  await writeFile(join(dir, 'strict', 'leaf.pem'), served.leaf.toString());
  await writeFile(join(dir, 'strict', 'chain.pem'), served.chain.slice(1).map((c) => c.toString()).join(''));
  await writeFile(join(dir, 'strict', 'key.pem'), served.keyPem, { mode: 0o600 });
  await writeFile(join(dir, 'strict', 'bundle.pem'), ca.bundlePem());
  strictPort = await freePort();
  deadPort = await freePort();
  const f = (n: string) => join(dir, 'strict', n);
  strict = await startTestProcess({
    name: 'openssl-s_server',
    command: 'openssl',
    args: ['s_server', '-quiet', '-www', '-tls1_3', '-accept', `127.0.0.1:${strictPort}`, '-cert', f('leaf.pem'), '-cert_chain', f('chain.pem'), '-key', f('key.pem'), '-CAfile', f('bundle.pem'), '-Verify', '1', '-verify_return_error', '-alpn', 'http/1.1'],
    ready: { port: strictPort },
    readyTimeoutMs: 10_000,
  });
  // X.509 times are whole seconds: the short-lived caller's SVID expires 3 to 4 s from now.
  expiresAtMs = Math.ceil(Date.now() / 1000) * 1000 + 3_000;
  const short = await startCaller('short', await ca.mintSvid(WEB, { notAfter: new Date(expiresAtMs) }));
  // Before its NotAfter: a session ticket from the upstream, which its next connection (after it) resumes.
  expect(await get(short, 'tessera')).toEqual({ status: 200, error: null });
  // Its own bundle has both authorities (a proxy refuses to serve an SVID it cannot verify); the upstreams only `ca`.
  const other = await TestCa.create({ trustDomain: TD });
  await startCaller('foreign', await other.mintSvid(WEB), other.bundlePem());
  await startCaller('good', await ca.mintSvid(WEB));
}, 60_000);

afterAll(async () => {
  await Promise.all([api, ...callers].map((p) => p?.stop()));
  app?.close();
  await strict?.stop();
  await cleanup?.();
});

test('a good caller counts one outbound success per connection, and no failure', async () => {
  const good = callers[2]!;
  expect(await get(good, 'tessera')).toEqual({ status: 200, error: null });
  expect(await get(good, 'strict')).toEqual({ status: 200, error: null });
  const deadline = Date.now() + 3_000;
  while ((await outbound(good)).success < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const m = await outbound(good);
  expect(m.success).toBe(2);
  expect(sumSeries(await metricsText(good.admin), 'tessera_tls_handshakes_total', { direction: 'outbound', result: 'failure' })).toBe(0);
  expect(warnLines(good)).toEqual([]);
});

test.each([
  ['a Tessera upstream (a silent close)', 'tessera', 'protocol'],
  ['an OpenSSL server (an alert)', 'strict', 'unknown_ca'],
])('a caller whose SVID comes from a CA %s does not trust counts a failure, %s, and logs it', async (_name, listener, reason) => {
  const foreign = callers[1]!;
  const before = await outbound(foreign);
  // The request fails either way (upstream_unavailable after a close, upstream_reset after an alert).
  expect((await get(foreign, listener)).status).toBe(502);
  await settled(foreign, reason);
  const after = await outbound(foreign);
  expect(after.failures(reason)).toBeGreaterThan(before.failures(reason));
  expect(after.success).toBe(0);
  const line = warnLines(foreign).find((l) => l.reason === reason);
  expect(line?.detail).toContain("refused this proxy's certificate");
});

test.each([
  ['a Tessera upstream', 'tessera', 'protocol'],
  ['an OpenSSL server', 'strict', 'expired'],
])('a caller whose own SVID expired: %s refuses it, the caller counts %s, not a success', async (_name, listener, reason) => {
  const short = callers[0]!;
  const wait = expiresAtMs + 1_100 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const before = await outbound(short);
  const res = await get(short, listener);
  expect(res.status).toBe(502);
  await settled(short, reason);
  const after = await outbound(short);
  expect(after.failures(reason)).toBeGreaterThan(before.failures(reason));
  expect(after.success).toBe(before.success);
  expect(warnLines(short).some((l) => l.reason === reason && l.detail.includes("refused this proxy's certificate"))).toBe(true);
}, 15_000);

test('the refused resumption is resumed="true" on both sides', async () => {
  const short = callers[0]!;
  // The tessera case above resumed the ticket of the request before the NotAfter: the upstream refused it.
  const upstream = await metricsText(api.admin);
  expect(sumSeries(upstream, 'tessera_tls_handshakes_total', { direction: 'inbound', result: 'failure', reason: 'expired', resumed: 'true' })).toBeGreaterThan(0);
  const caller = await metricsText(short.admin);
  expect(sumSeries(caller, 'tessera_tls_handshakes_total', { direction: 'outbound', result: 'failure', reason: 'protocol', resumed: 'true' })).toBeGreaterThan(0);
});

test('an upstream that refuses the TCP connect is no TLS handshake: not counted among them, logged as a connect failure', async () => {
  const good = callers[2]!;
  const before = sumSeries(await metricsText(good.admin), 'tessera_tls_handshakes_total', { direction: 'outbound' });
  expect(await get(good, 'dead')).toEqual({ status: 502, error: 'upstream_unavailable' });
  // Before 2026-12-06 it was a handshake failure with reason `other` and an "upstream handshake failed" line.
  expect(sumSeries(await metricsText(good.admin), 'tessera_tls_handshakes_total', { direction: 'outbound' })).toBe(before);
  const line = good
    .stderr()
    .split('\n')
    .find((l) => l.includes('"upstream connect failed"'));
  expect(JSON.parse(line ?? '{}')).toMatchObject({ reason: 'connect_failed', upstream: `127.0.0.1:${deadPort}` });
  expect(warnLines(good)).toEqual([]);
});
