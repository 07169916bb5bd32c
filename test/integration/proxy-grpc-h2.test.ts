// gRPC and HTTP/2 through two real `tessera proxy` processes: a grpc-js client → web's sidecar (h2c outbound)
// → mTLS HTTP/2 → api's sidecar (grpc inbound) → a grpc-js server. Unary, streaming both ways, trailers with
// error statuses, deadlines, forwarded identity in metadata, PERMISSION_DENIED from policy; curl over HTTP/2.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { makeTempDir } from '../helpers/run.js';
import { allowPolicy, type SidecarPair, startSidecarPair } from '../helpers/sidecar-pair.js';
import { guardH2Server } from '../../proxy/src/h2/h2-error-guard.js';
import { realTimers } from '../../shared-io/timers.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const PROTO = `syntax = "proto3";
package echo.v1;
message Msg { string text = 1; }
service Echo {
  rpc Unary (Msg) returns (Msg);
  rpc ServerStream (Msg) returns (stream Msg);
  rpc ClientStream (stream Msg) returns (Msg);
  rpc Bidi (stream Msg) returns (stream Msg);
  rpc Fail (Msg) returns (Msg);
  rpc Slow (Msg) returns (Msg);
  rpc Forbidden (Msg) returns (Msg);
}
`;

type Msg = { text: string };
type Client = grpc.Client & Record<string, (...a: unknown[]) => unknown>;

let dir: string;
let cleanup: () => Promise<void>;
let server: grpc.Server;
let h2app: http2.Http2Server;
let pair: SidecarPair;
let client: Client;
let h2Outbound: number;

function unary(method: string, text: string, opts: grpc.CallOptions = {}): Promise<{ text: string; md?: string } | grpc.ServiceError> {
  return new Promise((resolve) => {
    (client[method] as (m: Msg, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Msg) => void) => void)({ text }, new grpc.Metadata(), opts, (e, r) => resolve(e ?? r));
  });
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  await writeFile(join(dir, 'echo.proto'), PROTO);
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(join(dir, 'echo.proto'))) as unknown as { echo: { v1: { Echo: grpc.ServiceClientConstructor } } };
  const Echo = pkg.echo.v1.Echo;
  server = new grpc.Server();
  server.addService(Echo.service, {
    Unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => cb(null, { text: `${call.request.text}|${call.metadata.get('x-forwarded-client-cert')[0] ?? ''}` }),
    ServerStream: (call: grpc.ServerWritableStream<Msg, Msg>) => {
      for (let i = 0; i < 5; i++) call.write({ text: `${call.request.text}-${i}` });
      call.end();
    },
    ClientStream: (call: grpc.ServerReadableStream<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      const parts: string[] = [];
      call.on('data', (m: Msg) => parts.push(m.text));
      call.on('end', () => cb(null, { text: parts.join(',') }));
    },
    Bidi: (call: grpc.ServerDuplexStream<Msg, Msg>) => {
      call.on('data', (m: Msg) => call.write({ text: m.text.toUpperCase() }));
      call.on('end', () => call.end());
    },
    Fail: (_call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => cb({ code: grpc.status.NOT_FOUND, details: 'no such thing' }),
    Slow: (_call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => setTimeout(() => cb(null, { text: 'late' }), 2_000),
    Forbidden: (_call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => cb(null, { text: 'should not happen' }),
  });
  const appPort = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));

  h2app = http2.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ path: req.url, xfcc: req.headers['x-forwarded-client-cert'] }));
  });
  guardH2Server(h2app, realTimers); // an app's stream reset by the proxy must not become an uncaught error in this worker
  await new Promise<void>((r) => h2app.listen(0, '127.0.0.1', r));
  const h2Port = (h2app.address() as AddressInfo).port;

  pair = await startSidecarPair(dir, {
    trustDomain: TD,
    apiId: API,
    webId: WEB,
    policies: {
      'deny.yaml': `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-deny-forbidden }\nspec:\n  selector: ${API}\n  action: DENY\n  rules:\n    - from: ["spiffe://${TD}/**"]\n      to: { paths: ["/echo.v1.Echo/Forbidden"] }\n---\n${allowPolicy(API, WEB)}`,
    },
    inbound: [`{ name: grpc, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort}, protocol: grpc }`, `{ name: h2, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${h2Port}, protocol: http2 }`],
    outbound: (api) => [
      `{ name: grpc, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.get('inbound/grpc')}, spiffeId: ${API}, protocol: grpc }`,
      `{ name: h2, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.get('inbound/h2')}, spiffeId: ${API}, protocol: http2 }`,
    ],
  });
  h2Outbound = pair.web.ports.get('outbound/h2')!;
  client = new Echo(`127.0.0.1:${pair.web.ports.get('outbound/grpc')}`, grpc.credentials.createInsecure()) as unknown as Client;
}, 60_000);

afterAll(async () => {
  client?.close();
  await pair?.stop();
  server?.forceShutdown();
  h2app?.close();
  await cleanup?.();
});

describe('gRPC through two sidecars', () => {
  test('unary: the answer comes back and the server saw the caller identity in x-forwarded-client-cert', async () => {
    const r = (await unary('Unary', 'hi')) as Msg;
    expect(r.text).toMatch(new RegExp(`^hi\\|By=${API};Hash=[0-9a-f]{64};URI=${WEB}$`));
  });

  test('server streaming, client streaming and bidi streaming', async () => {
    const got = await new Promise<string[]>((resolve, reject) => {
      const out: string[] = [];
      const call = (client.ServerStream as (m: Msg) => grpc.ClientReadableStream<Msg>)({ text: 's' });
      call.on('data', (m: Msg) => out.push(m.text));
      call.on('end', () => resolve(out));
      call.on('error', reject);
    });
    expect(got).toEqual(['s-0', 's-1', 's-2', 's-3', 's-4']);
    const joined = await new Promise<string>((resolve, reject) => {
      const call = (client.ClientStream as (cb: (e: grpc.ServiceError | null, r: Msg) => void) => grpc.ClientWritableStream<Msg>)((e, r) => (e ? reject(e) : resolve(r.text)));
      for (const t of ['a', 'b', 'c']) call.write({ text: t });
      call.end();
    });
    expect(joined).toBe('a,b,c');
    const echoed = await new Promise<string[]>((resolve, reject) => {
      const out: string[] = [];
      const call = (client.Bidi as () => grpc.ClientDuplexStream<Msg, Msg>)();
      call.on('data', (m: Msg) => {
        out.push(m.text);
        if (out.length < 3) call.write({ text: `m${out.length}` });
        else call.end();
      });
      call.on('end', () => resolve(out));
      call.on('error', reject);
      call.write({ text: 'm0' });
    });
    expect(echoed).toEqual(['M0', 'M1', 'M2']);
  });

  test('error statuses travel in trailers; deadlines are enforced end to end', async () => {
    const e = (await unary('Fail', 'x')) as grpc.ServiceError;
    expect(e.code).toBe(grpc.status.NOT_FOUND);
    expect(e.details).toBe('no such thing');
    const slow = (await unary('Slow', 'x', { deadline: Date.now() + 300 })) as grpc.ServiceError;
    expect(slow.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(((await unary('Unary', 'after')) as Msg).text).toMatch(/^after\|/);
  });

  test('a call the policy denies gets PERMISSION_DENIED with a short code, and the method never runs', async () => {
    const e = (await unary('Forbidden', 'x')) as grpc.ServiceError;
    expect(e.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(e.details).toBe('authz_denied');
  });

  test('many concurrent calls share one upstream mTLS connection', async () => {
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => unary('Unary', `c${i}`)));
    expect(results.every((r) => 'text' in r)).toBe(true);
    const m = await (await fetch(`http://127.0.0.1:${pair.web.admin}/metrics`)).text();
    const opened = m
      .split('\n')
      .filter((l) => l.startsWith('tessera_upstream_connections_opened_total{'))
      .reduce((a, l) => a + Number(l.split(' ').pop()), 0);
    expect(opened).toBeLessThanOrEqual(2);
  });
});

describe('HTTP/2 through two sidecars', () => {
  test('curl --http2-prior-knowledge reaches the h2 app with the forwarded identity', async () => {
    const out = await new Promise<string>((resolve, reject) =>
      execFile('curl', ['-sS', '--max-time', '10', '--http2-prior-knowledge', `http://127.0.0.1:${h2Outbound}/h2/path?x=1`], (e, stdout) => (e ? reject(e) : resolve(stdout))),
    );
    const body = JSON.parse(out) as { path: string; xfcc: string };
    expect(body.path).toBe('/h2/path?x=1');
    expect(body.xfcc).toContain(`URI=${WEB}`);
  });
});
