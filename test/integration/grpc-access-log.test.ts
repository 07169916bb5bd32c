// The gRPC status in the access log, on every hop: a grpc-js client calls a grpc-js app through web's sidecar
// (outbound) → api's sidecar (inbound), and through an edge → api's sidecar. A failed call is HTTP 200 with
// grpc-status ≠ 0 in the trailers (or in a trailers-only head), so `status` alone makes it look like a success:
// each line must carry `grpcStatus` — the app's error, an OK call's 0, and Tessera's own PERMISSION_DENIED from a
// policy at the inbound sidecar or at the edge — the same value the metrics count under `code`.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const EDGE = `spiffe://${TD}/ns/edge/sa/gateway`;
const PROTO = `syntax = "proto3";
package echo.v1;
message Msg { string text = 1; }
service Echo {
  rpc Unary (Msg) returns (Msg);
  rpc Fail (Msg) returns (Msg);
  rpc FailLate (Msg) returns (stream Msg);
  rpc Forbidden (Msg) returns (Msg);
  rpc Hidden (Msg) returns (Msg);
}
`;

type Msg = { text: string };
type Client = grpc.Client & Record<string, (...a: unknown[]) => unknown>;

let dir: string;
let cleanup: () => Promise<void>;
let server: grpc.Server;
const procs: ProxyProcess[] = [];
let viaWeb: Client;
let viaEdge: Client;

const policies = [
  `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-deny-forbidden }\nspec:\n  selector: ${API}\n  action: DENY\n  rules:\n    - from: ["spiffe://${TD}/**"]\n      to: { paths: ["/echo.v1.Echo/Forbidden"] }\n---\n`,
  `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: ["${WEB}", "${EDGE}"]\n---\n`,
  // Hidden is routed at the edge but not allowed there: the edge answers PERMISSION_DENIED itself.
  `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: edge-public }\nspec:\n  selector: ${EDGE}\n  action: ALLOW\n  rules:\n    - from: [unauthenticated]\n      to: { paths: ["/echo.v1.Echo/Unary", "/echo.v1.Echo/Fail", "/echo.v1.Echo/FailLate", "/echo.v1.Echo/Forbidden"] }\n`,
].join('');

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  await writeFile(join(dir, 'echo.proto'), PROTO);
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(join(dir, 'echo.proto'))) as unknown as { echo: { v1: { Echo: grpc.ServiceClientConstructor } } };
  const Echo = pkg.echo.v1.Echo;
  server = new grpc.Server();
  server.addService(Echo.service, {
    Unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => cb(null, { text: call.request.text }),
    // No message before the error: grpc-js answers trailers-only, grpc-status in the response head.
    Fail: (_call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => cb({ code: grpc.status.FAILED_PRECONDITION, details: 'not now' }),
    // A message first: the head has gone out, grpc-status comes in the trailers.
    FailLate: (call: grpc.ServerWritableStream<Msg, Msg>) => {
      call.write({ text: 'one' });
      call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'bad second' });
    },
    Forbidden: (_call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => cb(null, { text: 'should not happen' }),
    Hidden: (_call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => cb(null, { text: 'should not happen' }),
  });
  const appPort = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));

  const mesh = await TestCa.create({ trustDomain: TD });
  const site = await TestCa.create({ trustDomain: 'site.test', rootName: 'CN=Site CA, O=Test' });
  const siteCert = await site.mintSvid('spiffe://site.test/edge', { dnsSans: ['localhost'] });
  await writeFile(join(dir, 'site.pem'), siteCert.chainPem);
  await writeFile(join(dir, 'site.key'), siteCert.keyPem, { mode: 0o600 });
  await mkdir(join(dir, 'policies'));
  await writeFile(join(dir, 'policies', 'all.yaml'), policies);
  for (const [id, name] of [[API, 'api'], [WEB, 'web'], [EDGE, 'edge']] as const) await writeSvidFiles(mesh, id, join(dir, name));
  const common = (name: string) =>
    `identity:\n  files: { certFile: ${name}/svid.pem, keyFile: ${name}/key.pem, bundleFile: ${name}/bundle.pem }\nauthorization: { policiesDir: policies, defaultAction: deny }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: ${join(dir, `${name}-access.log`)} }\n`;
  const start = async (name: string, body: string) => {
    await writeFile(join(dir, `${name}.yaml`), `${common(name)}${body}`);
    const p = await startProxyProcess(join(dir, `${name}.yaml`));
    procs.push(p);
    return p;
  };
  const api = await start('api', `inbound:\n  - { name: grpc, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort}, protocol: grpc }\n`);
  const inbound = `127.0.0.1:${api.ports.get('inbound/grpc')}`;
  const web = await start('web', `outbound:\n  - { name: grpc, listen: 127.0.0.1:0, upstream: ${inbound}, spiffeId: ${API}, protocol: grpc }\n`);
  const edge = await start(
    'edge',
    `edge:\n  - name: public\n    listen: 127.0.0.1:0\n    certFile: site.pem\n    keyFile: site.key\n    authorize: true\n    routes:\n      - { pathPrefix: /echo.v1.Echo, upstream: ${inbound}, spiffeId: ${API}, protocol: grpc }\n`,
  );
  viaWeb = new Echo(`127.0.0.1:${web.ports.get('outbound/grpc')}`, grpc.credentials.createInsecure()) as unknown as Client;
  viaEdge = new Echo(`localhost:${edge.ports.get('edge/public')}`, grpc.credentials.createSsl(Buffer.from(site.bundlePem()))) as unknown as Client;
}, 60_000);

afterAll(async () => {
  viaWeb?.close();
  viaEdge?.close();
  for (const p of procs.reverse()) await p.stop();
  server?.forceShutdown();
  await cleanup?.();
});

/** The call's final gRPC status as the client saw it. */
function call(client: Client, method: string): Promise<number> {
  return new Promise((resolve) => {
    if (method === 'FailLate') {
      const s = (client[method] as (m: Msg) => grpc.ClientReadableStream<Msg>)({ text: 'x' });
      s.on('data', () => {});
      s.on('error', () => {});
      s.on('status', (st: grpc.StatusObject) => resolve(st.code));
      return;
    }
    (client[method] as (m: Msg, cb: (e: grpc.ServiceError | null) => void) => void)({ text: 'x' }, (e) => resolve(e ? e.code : grpc.status.OK));
  });
}

/** The one access-log line of `name`'s proxy for `method` (from `peer`, when given). */
async function line(name: string, method: string, peer?: string): Promise<Record<string, unknown>> {
  let found: Record<string, unknown>[] = [];
  await until(`${name}'s access-log line for ${method}`, async () => {
    const text = await readFile(join(dir, `${name}-access.log`), 'utf8').catch(() => '');
    found = text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((e) => e['path'] === `/echo.v1.Echo/${method}` && (peer === undefined || e['peer'] === peer));
    return found.length > 0;
  });
  expect(found).toHaveLength(1);
  return found[0]!;
}

describe('grpcStatus on every hop', () => {
  test.each([
    ['an OK call', 'Unary', grpc.status.OK],
    ['an app error in a trailers-only answer', 'Fail', grpc.status.FAILED_PRECONDITION],
    ['an app error in the trailers, after a message', 'FailLate', grpc.status.INVALID_ARGUMENT],
    ["the inbound sidecar's PERMISSION_DENIED by policy", 'Forbidden', grpc.status.PERMISSION_DENIED],
  ])('%s: web outbound and api inbound log it, with status 200', async (_what, method, code) => {
    expect(await call(viaWeb, method)).toBe(code);
    for (const l of [await line('web', method), await line('api', method, WEB)]) {
      expect(l).toMatchObject({ protocol: 'grpc', status: 200, grpcStatus: code });
    }
    // `upstream` names where the call went: absent for one refused before it (before 2026-12-06 the app's address).
    if (method === 'Forbidden') {
      expect(await line('api', method, WEB)).toMatchObject({ decision: 'deny', error: 'authz_denied' });
      expect(await line('api', method, WEB)).not.toHaveProperty('upstream');
    } else expect((await line('api', method, WEB))['upstream']).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  test.each([
    ['an OK call', 'Unary', grpc.status.OK],
    ['an app error in a trailers-only answer', 'Fail', grpc.status.FAILED_PRECONDITION],
    ['an app error in the trailers, after a message', 'FailLate', grpc.status.INVALID_ARGUMENT],
    ["the inbound sidecar's PERMISSION_DENIED by policy", 'Forbidden', grpc.status.PERMISSION_DENIED],
  ])('%s: the edge and api inbound log it', async (_what, method, code) => {
    expect(await call(viaEdge, method)).toBe(code);
    for (const l of [await line('edge', method), await line('api', method, EDGE)]) {
      expect(l).toMatchObject({ protocol: 'grpc', status: 200, grpcStatus: code });
    }
  });

  test("the edge's own PERMISSION_DENIED by policy: logged at the edge, never reaching api", async () => {
    expect(await call(viaEdge, 'Hidden')).toBe(grpc.status.PERMISSION_DENIED);
    expect(await line('edge', 'Hidden')).toMatchObject({ protocol: 'grpc', status: 200, grpcStatus: grpc.status.PERMISSION_DENIED, error: 'authz_denied' });
    expect(await line('edge', 'Hidden')).not.toHaveProperty('upstream');
    const api = await readFile(join(dir, 'api-access.log'), 'utf8');
    expect(api).not.toContain('/echo.v1.Echo/Hidden');
  });
});
