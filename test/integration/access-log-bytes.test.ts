// bytesIn and bytesOut of the access log mean one thing on every protocol (audit 51a F3): the content of the request
// and of the response, as HTTP/2 carries it in DATA frames. On HTTP/1.1 the request head was counted in bytesIn (a
// GET with no body logged 60) and the response head in bytesOut; a chunked body's framing was counted too. Real
// curl over HTTP/1.1 and over HTTP/2 (prior knowledge) through two real sidecars, the same requests to the same
// app: both sidecars log the same counts for both protocols, and the counts are the content lengths.
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { guardH2Server } from '../../proxy/src/h2/h2-error-guard.js';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir, run } from '../helpers/run.js';
import { allowPolicy } from '../helpers/sidecar-pair.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';
import { realTimers } from '../../shared-io/timers.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const HELLO = 'hello, world\n';
const UPLOAD = 'x'.repeat(1_000);

let dir: string;
let cleanup: () => Promise<void>;
let h1app: ReturnType<typeof createServer>;
let h2app: http2.Http2Server;
let api: ProxyProcess;
let web: ProxyProcess;

/** One app for both protocols (node's compatibility API): a fixed answer, a chunked one, an echo of the upload. */
interface AppRequest {
  readonly url?: string | undefined;
  on(event: 'data' | 'end', listener: (d: Buffer) => void): unknown;
}
interface AppResponse {
  write(chunk: string): unknown;
  writeHead(status: number): unknown;
  end(chunk: string | Uint8Array): unknown;
}

function handle(req: AppRequest, res: AppResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (d: Buffer) => chunks.push(d));
  req.on('end', () => {
    if (req.url === '/chunked') {
      res.write('abc');
      setTimeout(() => res.end('defg'), 20);
    } else if (req.url === '/echo') res.end(Buffer.concat(chunks));
    else if (req.url === '/none') {
      res.writeHead(204);
      res.end('');
    } else res.end(HELLO);
  });
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  h1app = createServer(handle);
  await new Promise<void>((r) => h1app.listen(0, '127.0.0.1', r));
  h2app = http2.createServer(handle);
  guardH2Server(h2app, realTimers);
  await new Promise<void>((r) => h2app.listen(0, '127.0.0.1', r));
  const ca = await TestCa.create({ trustDomain: TD });
  await writeSvidFiles(ca, API, join(dir, 'api'));
  await writeSvidFiles(ca, WEB, join(dir, 'web'));
  await mkdir(join(dir, 'policies'));
  await writeFile(join(dir, 'policies', 'allow.yaml'), allowPolicy(API, WEB));
  const port = (s: { address(): unknown }) => (s.address() as AddressInfo).port;
  await writeFile(
    join(dir, 'api.yaml'),
    `identity:\n  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }\ninbound:\n  - { name: h1, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${port(h1app)} }\n  - { name: h2, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${port(h2app)}, protocol: http2 }\nauthorization: { policiesDir: policies }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: stdout }\n`,
  );
  api = await startProxyProcess(join(dir, 'api.yaml'));
  await writeFile(
    join(dir, 'web.yaml'),
    `identity:\n  files: { certFile: web/svid.pem, keyFile: web/key.pem, bundleFile: web/bundle.pem }\noutbound:\n  - { name: h1, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/h1')}, spiffeId: ${API} }\n  - { name: h2, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/h2')}, spiffeId: ${API}, protocol: http2 }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: stdout }\n`,
  );
  web = await startProxyProcess(join(dir, 'web.yaml'));
}, 60_000);

afterAll(async () => {
  await web?.stop();
  await api?.stop();
  h1app?.close();
  h2app?.close();
  await cleanup?.();
});

interface Line {
  direction: string;
  protocol: string;
  method: string;
  path: string;
  status: number;
  bytesIn: number;
  bytesOut: number;
}

const lines = (p: ProxyProcess): Line[] =>
  p
    .stdout()
    .split('\n')
    .filter((l) => l.includes('"log":"access"'))
    .map((l) => JSON.parse(l) as Line);

test('bytesIn and bytesOut are the content, the same over HTTP/1.1 and HTTP/2, at both sidecars', async () => {
  await writeFile(join(dir, 'upload'), UPLOAD);
  const requests: { name: string; args: string[]; path: string; method: string; bytesIn: number; bytesOut: number; body: string }[] = [
    { name: 'GET, no body', args: [], path: '/hello', method: 'GET', bytesIn: 0, bytesOut: HELLO.length, body: HELLO },
    { name: 'a chunked answer', args: [], path: '/chunked', method: 'GET', bytesIn: 0, bytesOut: 7, body: 'abcdefg' },
    { name: 'an upload echoed', args: ['--data-binary', `@${join(dir, 'upload')}`], path: '/echo', method: 'POST', bytesIn: UPLOAD.length, bytesOut: UPLOAD.length, body: UPLOAD },
    { name: 'a chunked upload', args: ['-H', 'transfer-encoding: chunked', '--data-binary', `@${join(dir, 'upload')}`], path: '/echo', method: 'POST', bytesIn: UPLOAD.length, bytesOut: UPLOAD.length, body: UPLOAD },
    { name: 'HEAD', args: ['-I'], path: '/hello', method: 'HEAD', bytesIn: 0, bytesOut: 0, body: '' },
    { name: 'a 204', args: [], path: '/none', method: 'GET', bytesIn: 0, bytesOut: 0, body: '' },
  ];
  const protocols = [
    { protocol: 'http', flag: '--http1.1', listener: 'outbound/h1' },
    { protocol: 'http2', flag: '--http2-prior-knowledge', listener: 'outbound/h2' },
  ];
  for (const p of protocols) {
    for (const r of requests) {
      // The chunked upload is an HTTP/1.1 framing: over HTTP/2 the same bytes go as DATA.
      const args = p.protocol === 'http2' ? r.args.filter((a) => a !== 'transfer-encoding: chunked' && a !== '-H') : r.args;
      const out = await run('curl', ['-sS', p.flag, ...args, '-o', '-', `http://127.0.0.1:${web.ports.get(p.listener)}${r.path}`]);
      expect(out.code, `${p.protocol} ${r.name}: ${out.stderr}`).toBe(0);
      if (r.method !== 'HEAD') expect(out.stdout, `${p.protocol} ${r.name}`).toBe(r.body);
    }
  }
  const count = protocols.length * requests.length;
  await until('every exchange logged by both sidecars', () => lines(web).length >= count && lines(api).length >= count, 10_000, 50);
  for (const [sidecar, direction] of [
    [web, 'outbound'],
    [api, 'inbound'],
  ] as const) {
    const logged = lines(sidecar);
    expect(logged).toHaveLength(count);
    for (const [i, line] of logged.entries()) {
      const p = protocols[Math.floor(i / requests.length)]!;
      const r = requests[i % requests.length]!;
      expect({ direction: line.direction, protocol: line.protocol, method: line.method, path: line.path, bytesIn: line.bytesIn, bytesOut: line.bytesOut }, `${direction} ${p.protocol} ${r.name}`).toEqual({
        direction,
        protocol: p.protocol,
        method: r.method,
        path: r.path,
        bytesIn: r.bytesIn,
        bytesOut: r.bytesOut,
      });
    }
  }
});
