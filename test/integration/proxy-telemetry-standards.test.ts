// What mesh users' tooling expects, scraped and received from real processes: the standard OTEL_* variables
// configure a proxy's tracing (config keys win), spans carry service.name and the SPIFFE ID; stdout holds JSON
// lines only and stderr logs use string levels; /metrics has tessera_build_info, requests by listener and peer
// workload, the inbound handshake histogram, and the same default process metrics as the control plane.
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type RunningControlPlane, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const TRACE = '5cf92f3577b34da6a3ce929d0e0e4736';

interface OtlpAttr {
  key: string;
  value: { stringValue?: string };
}
interface OtlpExport {
  resourceSpans: { resource: { attributes: OtlpAttr[] }; scopeSpans: { spans: { traceId: string; name: string }[] }[] }[];
}

let dir: string;
let cleanup: () => Promise<void>;
let app: ReturnType<typeof createServer>;
let sink: ReturnType<typeof createServer>;
let api: ProxyProcess;
let web: ProxyProcess;
let cp: RunningControlPlane;
const exports: { path: string; body: OtlpExport }[] = [];

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end();
  });
}

const scrape = async (url: string) => (await fetch(url)).text();
const attrs = (r: { resource: { attributes: OtlpAttr[] } }) => Object.fromEntries(r.resource.attributes.map((a) => [a.key, a.value.stringValue]));
/** Resource attributes of every exported batch holding spans of the test's trace, one entry per span. */
function spansOfTrace(): Record<string, string | undefined>[] {
  const out: Record<string, string | undefined>[] = [];
  for (const e of exports) for (const rs of e.body.resourceSpans) for (const ss of rs.scopeSpans) for (const s of ss.spans) if (Buffer.from(s.traceId, 'base64').toString('hex') === TRACE || s.traceId === TRACE) out.push(attrs(rs));
  return out;
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const ca = await TestCa.create({ trustDomain: TD });
  sink = createServer((req, res) => {
    let b = '';
    req.on('data', (d) => {
      b += d;
    });
    req.on('end', () => {
      exports.push({ path: req.url ?? '', body: JSON.parse(b) as OtlpExport });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  const sinkBase = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;
  app = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));

  await writeSvidFiles(ca, API, join(dir, 'api'));
  await writeSvidFiles(ca, WEB, join(dir, 'web'));
  await mkdir(join(dir, 'policies'));
  await writeFile(join(dir, 'policies', 'api.yaml'), `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow-web }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: [${WEB}]\n`);
  // api: no tracing keys in the file; everything comes from the environment (base URL: /v1/traces is appended).
  await writeFile(
    join(dir, 'api.yaml'),
    `identity:\n  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }\ninbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${(app.address() as AddressInfo).port} }\nauthorization: { policiesDir: policies }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: stdout }\n`,
  );
  api = await startProxyProcess(join(dir, 'api.yaml'), 20_000, {
    ...process.env,
    // Trimmed as a deployment runs (vitest.config.ts turns the trims off for the other tests' processes).
    TESSERA_HEAP_TRIM: 'on',
    OTEL_EXPORTER_OTLP_ENDPOINT: sinkBase,
    OTEL_SERVICE_NAME: 'api-from-env',
    OTEL_RESOURCE_ATTRIBUTES: 'k8s.pod.name=api-7f9,deployment.environment=test%20env',
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: '1',
  });
  // web: the file sets every key; the environment says otherwise and must lose.
  await writeFile(
    join(dir, 'web.yaml'),
    `identity:\n  files: { certFile: web/svid.pem, keyFile: web/key.pem, bundleFile: web/bundle.pem }\noutbound:\n  - { name: to-api, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/app')}, spiffeId: ${API} }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry:\n  accessLog: stdout\n  tracing: { otlpEndpoint: "${sinkBase}/cfg/v1/traces", samplerRatio: 1, serviceName: web-from-config }\n`,
  );
  web = await startProxyProcess(join(dir, 'web.yaml'), 20_000, {
    ...process.env,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:1/v1/traces',
    OTEL_SERVICE_NAME: 'web-from-env',
    OTEL_TRACES_SAMPLER: 'always_off',
  });
  await mkdir(join(dir, 'cp'));
  cp = await startControlPlaneProcess(join(dir, 'cp'), await writeControlPlaneConfig(join(dir, 'cp')), { ...process.env, TESSERA_HEAP_TRIM: 'on' });
}, 90_000);

afterAll(async () => {
  await web?.stop();
  await api?.stop();
  await cp?.stop();
  app?.close();
  sink?.close();
  await cleanup?.();
});

describe('tracing from OTEL_* variables', () => {
  test('spans reach the sink: env-configured on api, config winning on web; service.name and spiffe.id on every span', async () => {
    expect(await get(web.ports.get('outbound/to-api')!, '/traced', { traceparent: `00-${TRACE}-00f067aa0ba902b7-01` })).toBe(200);
    await until('spans of both proxies exported', async () => new Set(spansOfTrace().map((a) => a['service.name'])).size >= 2, 15_000);
    const spans = spansOfTrace();
    for (const a of spans) {
      expect(a['service.name']).toMatch(/^(api-from-env|web-from-config)$/);
      expect(a['spiffe.id']).toBe(a['service.name'] === 'api-from-env' ? API : WEB);
    }
    const apiSpan = spans.find((a) => a['service.name'] === 'api-from-env')!;
    expect(apiSpan['k8s.pod.name']).toBe('api-7f9');
    expect(apiSpan['deployment.environment']).toBe('test env');
    expect(exports.map((e) => e.path).sort()).toEqual(expect.arrayContaining(['/v1/traces', '/cfg/v1/traces']));
    expect(api.stderr()).toContain('"msg":"tracing on"');
  });
});

describe('logs', () => {
  test('stdout holds JSON lines only (lifecycle and access log); stderr logs carry string levels', async () => {
    await until('access lines flushed', async () => api.stdout().includes('"log":"access"') && web.stdout().includes('"log":"access"'), 5_000);
    for (const p of [api, web]) {
      const lines = p.stdout().split('\n').filter((l) => l !== '');
      for (const l of lines) expect(() => JSON.parse(l), l).not.toThrow();
      expect(lines.map((l) => (JSON.parse(l) as { log: string }).log)).toEqual(expect.arrayContaining(['lifecycle', 'access']));
      const logs = p.stderr().split('\n').filter((l) => l !== '');
      expect(logs.length).toBeGreaterThan(0);
      for (const l of logs) expect((JSON.parse(l) as { level: unknown }).level, l).toMatch(/^(trace|debug|info|warn|error|fatal)$/);
    }
  });
});

describe('metrics', () => {
  test('tessera_build_info on the proxy and the control plane', async () => {
    const line = `tessera_build_info{version="0.1.0",node="${process.versions.node}",openssl="${process.versions.openssl}"} 1`;
    expect(await scrape(`http://127.0.0.1:${api.admin}/metrics`)).toContain(line);
    expect(await scrape(`http://${cp.admin}/metrics`)).toContain(line);
  });

  test('start-up garbage is given back before ready: one start-up heap trim on the proxy and the control plane', async () => {
    for (const url of [`http://127.0.0.1:${api.admin}/metrics`, `http://${cp.admin}/metrics`]) {
      const text = await scrape(url);
      expect(text, url).toMatch(/^tessera_heap_trims_total\{cause="startup"\} 1$/m);
      expect(text, url).toMatch(/^tessera_heap_trim_seconds_total (?!0$)[0-9.e-]+$/m);
    }
  });

  test('requests by listener and peer workload: the caller on inbound, the destination on outbound', async () => {
    expect(await get(web.ports.get('outbound/to-api')!, '/labelled')).toBe(200);
    const apiText = await scrape(`http://127.0.0.1:${api.admin}/metrics`);
    const webText = await scrape(`http://127.0.0.1:${web.admin}/metrics`);
    expect(apiText).toMatch(new RegExp(`^tessera_requests_total\\{direction="inbound",protocol="http",code="200",listener="app",peer="${WEB}"\\} [1-9]`, 'm'));
    expect(webText).toMatch(new RegExp(`^tessera_requests_total\\{direction="outbound",protocol="http",code="200",listener="to-api",peer="${API}"\\} [1-9]`, 'm'));
    expect(apiText).toMatch(new RegExp(`^tessera_request_duration_seconds_count\\{direction="inbound",listener="app",peer="${WEB}"\\} [1-9]`, 'm'));
  });

  test('the inbound handshake histogram has series next to the outbound one', async () => {
    const apiText = await scrape(`http://127.0.0.1:${api.admin}/metrics`);
    const webText = await scrape(`http://127.0.0.1:${web.admin}/metrics`);
    expect(apiText).toMatch(/^tessera_tls_handshake_duration_seconds_count\{direction="inbound"\} [1-9]/m);
    expect(apiText).toMatch(/^tessera_tls_handshake_duration_seconds_bucket\{le="5",direction="inbound"\} [1-9]/m);
    expect(webText).toMatch(/^tessera_tls_handshake_duration_seconds_count\{direction="outbound"\} [1-9]/m);
  });

  test('the control plane and the proxy expose the same default process metric names', async () => {
    // The families each declares (# TYPE), not the series it has so far: a labelled histogram such as
    // nodejs_gc_duration_seconds has no series until its first observation (here: until the process first collects).
    const names = (text: string) => new Set([...text.matchAll(/^# TYPE ((?:process|nodejs)_[a-z_]+) /gm)].map((m) => m[1]!));
    const proxyNames = names(await scrape(`http://127.0.0.1:${api.admin}/metrics`));
    const cpNames = names(await scrape(`http://${cp.admin}/metrics`));
    expect(proxyNames.has('process_resident_memory_bytes')).toBe(true);
    expect(proxyNames.has('process_cpu_seconds_total')).toBe(true);
    expect([...cpNames].sort()).toEqual([...proxyNames].sort());
    expect(await scrape(`http://${cp.admin}/metrics`)).not.toMatch(/^tessera_(process|nodejs)_/m);
  });
});
