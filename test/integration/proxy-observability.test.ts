// Observability and the authorization operator paths through real proxies: a W3C trace crosses both sidecars
// (the app sees the caller's trace id; both proxies export spans over OTLP/HTTP to a real receiver); an audit
// policy records but never blocks; a break-glass grant from the control plane opens a denied path, is counted,
// and closes by itself when it expires.
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type RunningControlPlane, TD, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { type ProxyProcess, startAttestedProxy } from '../helpers/proxy-process.js';
import { makeTempDir, tessera } from '../helpers/run.js';
import { until } from '../helpers/until.js';

const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane;
let app: ReturnType<typeof createServer>;
let receiver: ReturnType<typeof createServer>;
let api: ProxyProcess;
let web: ProxyProcess;
const exported: string[] = [];
const seenByApp: Record<string, string | undefined>[] = [];

function call(method: string, path: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: web.ports.get('outbound/api')!, method, path, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end();
  });
}

async function metric(p: ProxyProcess, re: RegExp): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${p.admin}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => re.test(l))
    .reduce((a, l) => a + Number(l.split(' ').pop()), 0);
}

const policy = (name: string, mode: string, rule: string) => `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: ${name} }\nspec:\n  selector: ${API}\n  action: ALLOW\n  mode: ${mode}\n  rules:\n${rule}`;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  receiver = createServer((req, res) => {
    let b = '';
    req.on('data', (d) => {
      b += d;
    });
    req.on('end', () => {
      exported.push(b);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const otlp = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/traces`;
  const tail = `telemetry:\n  accessLog: stdout\n  tracing: { otlpEndpoint: "${otlp}", samplerRatio: 1 }\n`;
  app = createServer((req, res) => {
    seenByApp.push({ traceparent: req.headers.traceparent as string | undefined, path: req.url });
    res.end('ok');
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  await mkdir(join(dir, 'cp'));
  const cfg = await writeControlPlaneConfig(join(dir, 'cp'));
  // Enforced: web may GET /v1/**. Audit (a DENY being rolled out): web should no longer reach /v1/private/**.
  await writeFile(join(dir, 'cp', 'policies', 'enforce.yaml'), policy('api-allow-web', 'enforce', `    - from: [${WEB}]\n      to: { methods: [GET], paths: ["/v1/**"] }\n`));
  await writeFile(join(dir, 'cp', 'policies', 'audit.yaml'), policy('api-deny-private', 'audit', `    - from: [${WEB}]\n      to: { paths: ["/v1/private/**"] }\n`).replace('action: ALLOW', 'action: DENY'));
  cp = await startControlPlaneProcess(join(dir, 'cp'), cfg);
  api = await startAttestedProxy(cp, dir, 'api', API, `inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${(app.address() as AddressInfo).port} }\n`, tail);
  web = await startAttestedProxy(cp, dir, 'web', WEB, `outbound:\n  - { name: api, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/app')}, spiffeId: ${API} }\n`, tail);
}, 90_000);

afterAll(async () => {
  await web?.stop();
  await api?.stop();
  await cp?.stop();
  app?.close();
  receiver?.close();
  await cleanup?.();
});

describe('tracing', () => {
  test("the app sees a traceparent carrying the caller's trace id; both proxies export their spans", async () => {
    expect(await call('GET', '/v1/public/traced', { traceparent: `00-${CALLER_TRACE}-00f067aa0ba902b7-01` })).toBe(200);
    const seen = seenByApp.find((s) => s.path === '/v1/public/traced')!;
    expect(seen.traceparent).toMatch(new RegExp(`^00-${CALLER_TRACE}-[0-9a-f]{16}-01$`));
    expect(seen.traceparent).not.toContain('00f067aa0ba902b7'); // re-parented on the proxies' spans
    await until('spans of both proxies exported', async () => exported.filter((b) => b.includes(CALLER_TRACE)).length >= 2, 10_000); // batch export ~1 s
    const all = exported.join('\n');
    expect(all).toContain('tessera.decision');
    expect(all).toContain(WEB);
  });
});

describe('audit mode and break-glass', () => {
  test('an audit policy decides and records, but never blocks', async () => {
    const before = await metric(api, /^tessera_authz_decisions_total\{.*mode="audit"/);
    expect(await call('GET', '/v1/private/x')).toBe(200); // enforce allows; the audit policy would deny
    expect(await metric(api, /^tessera_authz_decisions_total\{.*decision="deny".*mode="audit"/)).toBeGreaterThan(0);
    expect(await metric(api, /^tessera_authz_decisions_total\{.*mode="audit"/)).toBeGreaterThan(before);
  });

  test('break-glass opens a denied path for a bounded time, every use is counted, then it closes by itself', async () => {
    expect(await call('POST', '/v1/orders')).toBe(403);
    const r = await tessera(['policy', 'break-glass', '--data-dir', cp.dataDir, '--to', API, '--from', WEB, '--for', '6s', '--reason', 'incident 42: orders stuck']);
    expect(r.code).toBe(0);
    await until('break-glass grant applied', async () => (await call('POST', '/v1/orders')) === 200, 10_000);
    expect(await metric(api, /^tessera_authz_decisions_total\{.*mode="break-glass"/)).toBeGreaterThan(0);
    await until('break-glass logged in the access log', async () => /"policy":"break-glass\//.test(api.stdout()), 5_000); // the access log flushes about once a second
    await until('break-glass grant expired', async () => (await call('POST', '/v1/orders')) === 403, 15_000);
  }, 40_000);
});
