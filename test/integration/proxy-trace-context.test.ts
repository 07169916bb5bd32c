// The trace context a traced pair hands the app, and what a refusing collector does to a proxy, with real processes
// (an outside audit's findings): repeated traceparent lines start a new trace on HTTP/1.1 as on HTTP/2; tracestate
// goes on only with the trace it came with; a collector that answers 400 loses spans that are counted and logged,
// and the proxy still stops with exit 0 and its last access-log lines written.
import { readFile, mkdir, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseTraceparent } from '../../common/tracing/traceparent.js';
import { sumSeries } from '../helpers/prom-metrics.js';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER = `00-${TRACE}-00f067aa0ba902b7-01`;

let dir: string;
let cleanup: () => Promise<void>;
let app: ReturnType<typeof createServer>;
let sink: ReturnType<typeof createServer>;
let api: ProxyProcess;
let web: ProxyProcess;
let edge: ProxyProcess;
const seen = new Map<string, IncomingHttpHeaders>();
let sinkPosts = 0;

/** A request written by hand (repeated field lines are sent as such); resolves with the status code. */
function rawGet(port: number, path: string, lines: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(`GET ${path} HTTP/1.1\r\nhost: api\r\n${lines.map((l) => `${l}\r\n`).join('')}connection: close\r\n\r\n`));
    let got = '';
    s.on('data', (d) => {
      got += d;
    });
    s.on('end', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(got)?.[1] ?? 0)));
    s.on('error', reject);
  });
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const ca = await TestCa.create({ trustDomain: TD });
  // The app records the trace fields each request reached it with, by path.
  app = createServer((req, res) => {
    seen.set(req.url ?? '', req.headers);
    res.end('ok');
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  // A collector that refuses every export (400 and a body), as the audit's did.
  sink = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      sinkPosts++;
      res.writeHead(400, { 'content-type': 'text/plain' }).end('no');
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  const otlp = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/v1/traces`;
  await writeSvidFiles(ca, API, join(dir, 'api'));
  await writeSvidFiles(ca, WEB, join(dir, 'web'));
  await mkdir(join(dir, 'policies'));
  await writeFile(join(dir, 'policies', 'api.yaml'), `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow-web }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: [${WEB}]\n`);
  const tracing = `tracing: { otlpEndpoint: "${otlp}", samplerRatio: 1 }`;
  await writeFile(join(dir, 'api.yaml'), `identity:\n  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }\ninbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${(app.address() as AddressInfo).port} }\nauthorization: { policiesDir: policies }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: "off", ${tracing} }\n`);
  api = await startProxyProcess(join(dir, 'api.yaml'));
  await writeFile(join(dir, 'web.yaml'), `identity:\n  files: { certFile: web/svid.pem, keyFile: web/key.pem, bundleFile: web/bundle.pem }\noutbound:\n  - { name: to-api, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/app')}, spiffeId: ${API} }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: ${join(dir, 'web-access.log')}, ${tracing} }\n`);
  web = await startProxyProcess(join(dir, 'web.yaml'));
  // An edge (HTTPS from outside, no client certificate) in front of api, traced too.
  const site = await TestCa.create({ trustDomain: 'web.test', rootName: 'CN=Public Web CA, O=Test' });
  const cert = await site.mintSvid('spiffe://web.test/edge', { dnsSans: ['edge.test'] });
  await writeFile(join(dir, 'site-ca.pem'), site.bundlePem());
  await writeFile(join(dir, 'edge-site.pem'), cert.chainPem);
  await writeFile(join(dir, 'edge-site.key'), cert.keyPem, { mode: 0o600 });
  await writeFile(
    join(dir, 'edge.yaml'),
    `identity:\n  files: { certFile: web/svid.pem, keyFile: web/key.pem, bundleFile: web/bundle.pem }\nedge:\n  - name: public\n    listen: 127.0.0.1:0\n    certFile: edge-site.pem\n    keyFile: edge-site.key\n    routes:\n      - { host: "*", pathPrefix: /, upstream: 127.0.0.1:${api.ports.get('inbound/app')}, spiffeId: ${API} }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: "off", ${tracing} }\n`,
  );
  edge = await startProxyProcess(join(dir, 'edge.yaml'));
}, 60_000);

afterAll(async () => {
  await edge?.stop();
  await web?.stop();
  await api?.stop();
  app?.close();
  sink?.close();
  await cleanup?.();
});

describe('the trace context the app gets through a traced pair (HTTP/1.1 over the multiplexed transport)', () => {
  const port = () => web.ports.get('outbound/to-api')!;

  test("a caller's traceparent and tracestate continue: same trace, the tracestate checked and passed on", async () => {
    expect(await rawGet(port(), '/continued', [`traceparent: ${CALLER}`, 'tracestate: congo=t61rcWkgMzE', 'tracestate: rojo=00f067aa0ba902b7'])).toBe(200);
    const h = seen.get('/continued')!;
    expect(parseTraceparent(h.traceparent as string)!.traceId).toBe(TRACE);
    expect(h.tracestate).toBe('congo=t61rcWkgMzE,rojo=00f067aa0ba902b7');
  });

  test('two traceparent lines: a new trace (as HTTP/2 reads them), and no tracestate with it', async () => {
    expect(await rawGet(port(), '/dup', [`traceparent: ${CALLER}`, 'traceparent: 00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'tracestate: vendor=secret'])).toBe(200);
    const h = seen.get('/dup')!;
    const tp = parseTraceparent(h.traceparent as string)!;
    expect([TRACE, '5bf92f3577b34da6a3ce929d0e0e4736']).not.toContain(tp.traceId);
    expect(h.tracestate).toBeUndefined();
  });

  test('an invalid traceparent, or none, with a tracestate: a new trace without it; a 33-member tracestate is dropped', async () => {
    expect(await rawGet(port(), '/bad', ['traceparent: zz', 'tracestate: vendor=secret'])).toBe(200);
    expect(await rawGet(port(), '/none', ['tracestate: vendor=secret'])).toBe(200);
    expect(await rawGet(port(), '/long', [`traceparent: ${CALLER}`, `tracestate: ${Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(',')}`])).toBe(200);
    for (const p of ['/bad', '/none']) {
      expect(seen.get(p)!.tracestate, p).toBeUndefined();
      expect(parseTraceparent(seen.get(p)!.traceparent as string), p).not.toBeNull();
    }
    expect(parseTraceparent(seen.get('/long')!.traceparent as string)!.traceId).toBe(TRACE);
    expect(seen.get('/long')!.tracestate).toBeUndefined();
  });
});

describe('at the edge (HTTPS from an outside client)', () => {
  /** A request over TLS written by hand, as rawGet. */
  function tlsGet(path: string, lines: string[], ca: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: edge.ports.get('edge/public')!, servername: 'edge.test', ca }, () => s.write(`GET ${path} HTTP/1.1\r\nhost: edge.test\r\n${lines.map((l) => `${l}\r\n`).join('')}connection: close\r\n\r\n`));
      let got = '';
      s.on('data', (d) => {
        got += d;
      });
      s.on('end', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(got)?.[1] ?? 0)));
      s.on('error', reject);
    });
  }

  test("the client's trace continues with its checked tracestate; two traceparent lines start a new trace without it", async () => {
    const ca = await readFile(join(dir, 'site-ca.pem'), 'utf8');
    expect(await tlsGet('/edge-continued', [`traceparent: ${CALLER}`, 'tracestate: congo=t61rcWkgMzE'], ca)).toBe(200);
    expect(parseTraceparent(seen.get('/edge-continued')!.traceparent as string)!.traceId).toBe(TRACE);
    expect(seen.get('/edge-continued')!.tracestate).toBe('congo=t61rcWkgMzE');
    expect(await tlsGet('/edge-dup', [`traceparent: ${CALLER}`, `traceparent: ${CALLER}`, 'tracestate: congo=t61rcWkgMzE'], ca)).toBe(200);
    expect(parseTraceparent(seen.get('/edge-dup')!.traceparent as string)!.traceId).not.toBe(TRACE);
    expect(seen.get('/edge-dup')!.tracestate).toBeUndefined();
  });
});

describe('a collector that refuses the spans', () => {
  test('lost spans are counted and logged once; SIGTERM still exits 0 with every access-log line written', async () => {
    const admin = `http://127.0.0.1:${web.admin}/metrics`;
    await until('a refused export counted', async () => sumSeries(await (await fetch(admin)).text(), 'tessera_trace_spans_total', { outcome: 'export_failed' }) > 0, 15_000, 100);
    expect(web.stderr()).toContain('spans are being lost');
    expect(web.stderr().match(/spans are being lost/g)!.length).toBe(1);
    // Lines still in the access log's batch when the stop begins, and a last export the collector refuses.
    for (let i = 0; i < 5; i++) expect(await rawGet(web.ports.get('outbound/to-api')!, `/last-${i}`, [])).toBe(200);
    const posts = sinkPosts;
    expect(await web.stop()).toBe(0);
    expect(sinkPosts).toBeGreaterThan(posts);
    const lines = (await readFile(join(dir, 'web-access.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { path: string });
    for (let i = 0; i < 5; i++) expect(lines.map((l) => l.path)).toContain(`/last-${i}`);
    for (const l of web.stderr().trim().split('\n')) expect(() => JSON.parse(l), l).not.toThrow();
  });
});
