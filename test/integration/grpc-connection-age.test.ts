// gRPC servers end their connections on purpose: grpc-js and grpc-go after `max_connection_age` (a GOAWAY, in-flight
// calls given a grace), which is how a fleet rebalances long-lived HTTP/2 connections. Through two real sidecars
// (grpc-js client → web's outbound → mTLS HTTP/2 → api's inbound → grpc-js server that ages its connections every
// 150 ms), a steady stream of unary and client-streaming calls must all succeed: the sidecar opens a new session
// when the old one says GOAWAY and sends again what the server refused, instead of answering UNAVAILABLE.
import { writeFile } from 'node:fs/promises';
import { createServer as netServer, connect as netConnect, type Server, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { makeTempDir } from '../helpers/run.js';
import { type SidecarPair, startSidecarPair } from '../helpers/sidecar-pair.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const PROTO = `syntax = "proto3";
package age.v1;
message Msg { string text = 1; }
service Echo {
  rpc Unary (Msg) returns (Msg);
  rpc Collect (stream Msg) returns (Msg);
}
`;

type Msg = { text: string };
type Client = grpc.Client & Record<string, (...a: unknown[]) => unknown>;

let dir: string;
let cleanup: () => Promise<void>;
let server: grpc.Server;
/** Counts the api sidecar's connections to the app: each is one the app ended at its age and the sidecar replaced. */
let relay: Server;
let appConnections = 0;
let pair: SidecarPair;
let client: Client;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  await writeFile(join(dir, 'age.proto'), PROTO);
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(join(dir, 'age.proto'))) as unknown as { age: { v1: { Echo: grpc.ServiceClientConstructor } } };
  const Echo = pkg.age.v1.Echo;
  server = new grpc.Server({ 'grpc.max_connection_age_ms': 150, 'grpc.max_connection_age_grace_ms': 5_000 });
  server.addService(Echo.service, {
    Unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => cb(null, { text: call.request.text }),
    Collect: (call: grpc.ServerReadableStream<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      const parts: string[] = [];
      call.on('data', (m: Msg) => parts.push(m.text));
      call.on('end', () => cb(null, { text: parts.join(',') }));
    },
  });
  const appPort = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  relay = netServer((c) => {
    appConnections++;
    const u = netConnect({ host: '127.0.0.1', port: appPort });
    c.pipe(u).pipe(c);
    c.on('error', () => u.destroy());
    u.on('error', () => c.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  const relayPort = (relay.address() as AddressInfo).port;
  pair = await startSidecarPair(dir, {
    trustDomain: TD,
    apiId: API,
    webId: WEB,
    inbound: [`{ name: grpc, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${relayPort}, protocol: grpc }`],
    outbound: (api) => [`{ name: grpc, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.get('inbound/grpc')}, spiffeId: ${API}, protocol: grpc }`],
  });
  client = new Echo(`127.0.0.1:${pair.web.ports.get('outbound/grpc')}`, grpc.credentials.createInsecure()) as unknown as Client;
}, 60_000);

afterAll(async () => {
  client?.close();
  await pair?.stop();
  server?.forceShutdown();
  relay?.close();
  await cleanup?.();
});

function unary(text: string): Promise<string> {
  return new Promise((resolve) => {
    (client.Unary as (m: Msg, cb: (e: grpc.ServiceError | null, r: Msg) => void) => void)({ text }, (e, r) => resolve(e ? `error ${e.code} ${e.details}` : r.text));
  });
}

function collect(parts: string[]): Promise<string> {
  return new Promise((resolve) => {
    const call = (client.Collect as (cb: (e: grpc.ServiceError | null, r: Msg) => void) => grpc.ClientWritableStream<Msg>)((e, r) => resolve(e ? `error ${e.code} ${e.details}` : r.text));
    for (const p of parts) call.write({ text: p });
    call.end();
  });
}

test('calls keep succeeding while the server ends its connections every 150 ms (GOAWAY at max connection age)', async () => {
  const started = Date.now();
  const failures: string[] = [];
  let calls = 0;
  // 16 callers, each one call after another, for 3 s: about 20 connection ends of the app's, calls in flight on each.
  await Promise.all(
    Array.from({ length: 16 }, async (_, w) => {
      for (let i = 0; Date.now() - started < 3_000; i++) {
        const streaming = i % 3 === 2;
        const want = streaming ? `w${w}a,w${w}b,w${w}c${i}` : `w${w}-${i}`;
        const got = streaming ? await collect(want.split(',')) : await unary(want);
        calls++;
        if (got !== want) failures.push(got);
      }
    }),
  );
  expect(calls).toBeGreaterThan(100);
  // The app really did end its connections: the sidecar opened one after another.
  expect(appConnections).toBeGreaterThanOrEqual(5);
  expect(failures.slice(0, 5)).toEqual([]);
}, 30_000);
