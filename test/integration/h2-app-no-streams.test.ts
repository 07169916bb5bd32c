// An HTTP/2 app that allows no stream (SETTINGS_MAX_CONCURRENT_STREAMS 0, which RFC 9113 lets a server send for a
// short while): the sidecar's requests to it were queued in its session until limits.requestTimeout (60 s), each
// waiter opening another session up to the pool's bound (outside audit 61b). Now a new session has until
// limits.headersTimeout (1 s here) to allow a stream, its waiters on it alone, then they fail: 502
// upstream_unavailable to an HTTP/2 client, gRPC UNAVAILABLE to a gRPC one.
// Real sidecars (a caller's outbound h2c listener, the app's inbound http2 listener), a real node:http2 app.
import { mkdir, writeFile } from 'node:fs/promises';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const CALLER = `spiffe://${TD}/ns/default/sa/caller`;
/** Far below limits.requestTimeout (60 s), above limits.headersTimeout (1 s): an answer not there by then is the old wait. */
const ANSWER_WITHIN_MS = 10_000;

let dir: string;
let cleanup: () => Promise<void>;
let app: http2.Http2Server;
/** Allows no stream on each new connection for 50 ms, then 100 (audit 62f F1: it was refused for good). */
let warming: http2.Http2Server;
let sidecar: ProxyProcess;
let caller: ProxyProcess;
let appSessions = 0;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const mesh = await TestCa.create({ trustDomain: TD });
  app = http2.createServer({ settings: { maxConcurrentStreams: 0 } }, (_req, res) => res.end('ok'));
  app.on('session', () => appSessions++);
  const appPort = await new Promise<number>((r) => app.listen(0, '127.0.0.1', () => r((app.address() as AddressInfo).port)));
  warming = http2.createServer({ settings: { maxConcurrentStreams: 0 } }, (_req, res) => res.end('ok'));
  warming.on('session', (s) => setTimeout(() => s.settings({ maxConcurrentStreams: 100 }), 50));
  const warmingPort = await new Promise<number>((r) => warming.listen(0, '127.0.0.1', () => r((warming.address() as AddressInfo).port)));
  await mkdir(join(dir, 'policies'));
  await writeFile(join(dir, 'policies', 'api.yaml'), `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: ["${CALLER}"]\n`);
  await writeSvidFiles(mesh, API, join(dir, 'api'));
  await writeSvidFiles(mesh, CALLER, join(dir, 'caller'));
  await writeFile(
    join(dir, 'api.yaml'),
    `identity:\n  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }\ninbound:\n  - { name: h2, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort}, protocol: http2 }\n  - { name: warming, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${warmingPort}, protocol: http2 }\nauthorization: { policiesDir: policies }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\nlimits: { headersTimeout: 1s }\n`,
  );
  sidecar = await startProxyProcess(join(dir, 'api.yaml'));
  await writeFile(
    join(dir, 'caller.yaml'),
    `identity:\n  files: { certFile: caller/svid.pem, keyFile: caller/key.pem, bundleFile: caller/bundle.pem }\noutbound:\n  - { name: h2c, listen: 127.0.0.1:0, upstream: 127.0.0.1:${sidecar.ports.get('inbound/h2')!}, spiffeId: ${API}, protocol: http2 }\n  - { name: warming, listen: 127.0.0.1:0, upstream: 127.0.0.1:${sidecar.ports.get('inbound/warming')!}, spiffeId: ${API}, protocol: http2 }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n`,
  );
  caller = await startProxyProcess(join(dir, 'caller.yaml'));
}, 60_000);

afterAll(async () => {
  await caller?.stop();
  await sidecar?.stop();
  app?.close();
  warming?.close();
  await cleanup?.();
});

/** What `headers` sent through the caller's h2c listener are answered with, or how it ended without an answer. */
function ask(headers: http2.OutgoingHttpHeaders, listener = 'h2c'): Promise<string> {
  return new Promise((resolve) => {
    const s = http2.connect(`http://127.0.0.1:${caller.ports.get(`outbound/${listener}`)!}`);
    const done = (what: string) => {
      clearTimeout(timer);
      s.destroy();
      resolve(what);
    };
    const timer = setTimeout(() => done('no answer'), ANSWER_WITHIN_MS);
    s.on('error', (e) => done(`session error ${e.message}`));
    const r = s.request(headers, { endStream: true });
    r.on('response', (h) => {
      if (h['grpc-status'] !== undefined) return done(`${h[':status']} grpc-status ${h['grpc-status']}`);
      r.on('trailers', (t) => done(`${h[':status']} grpc-status ${t['grpc-status']}`));
      r.on('end', () => done(`${h[':status']} ${h['x-tessera-error'] ?? ''}`.trim()));
      r.resume();
    });
    r.on('error', (e) => done(`stream error ${e.message}`));
  });
}

test('HTTP/2 requests to an app that allows no stream fail at the SETTINGS deadline (502 upstream_unavailable), one app connection for them all', async () => {
  const answers = await Promise.all([0, 1, 2].map(() => ask({ ':method': 'GET', ':path': '/x' })));
  expect(answers).toEqual(Array(3).fill('502 upstream_unavailable'));
  // Not a session per waiter up to the pool's bound (32).
  expect(appSessions).toBeLessThanOrEqual(3);
});

test('a gRPC call to such an app ends UNAVAILABLE at the SETTINGS deadline', async () => {
  expect(await ask({ ':method': 'POST', ':path': '/pkg.Svc/Call', 'content-type': 'application/grpc', te: 'trailers' })).toBe('200 grpc-status 14');
});

test('an app that allows no stream for a moment on each new connection is served once it allows some', async () => {
  expect(await Promise.all([0, 1, 2].map(() => ask({ ':method': 'GET', ':path': '/x' }, 'warming')))).toEqual(Array(3).fill('200'));
});
