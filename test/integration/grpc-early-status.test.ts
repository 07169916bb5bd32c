// A gRPC server that answers a client-streaming call before its client has finished streaming (a validation
// failure, a server that needs only the first message): the call's status travels in the response trailers, and
// the proxies, which tell a client still sending to stop (RST_STREAM NO_ERROR once the answer is whole), must send
// those trailers first. Closed before them (audit 58f F1, on 8765e62), a grpc-js client got INTERNAL "Call ended
// without gRPC status" for a call the server had answered OK. grpc-js client → web's outbound → mTLS HTTP/2 → api's
// inbound → grpc-js server, real processes.
import { writeFile } from 'node:fs/promises';
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
package early.v1;
message Msg { string text = 1; }
service Echo {
  rpc First (stream Msg) returns (Msg);
}
`;

type Msg = { text: string };
type Client = grpc.Client & { First: (cb: (err: grpc.ServiceError | null, m?: Msg) => void) => grpc.ClientWritableStream<Msg> };

let cleanup: () => Promise<void>;
let server: grpc.Server;
let pair: SidecarPair;
let client: Client;

beforeAll(async () => {
  let dir: string;
  ({ dir, cleanup } = await makeTempDir());
  await writeFile(join(dir, 'early.proto'), PROTO);
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(join(dir, 'early.proto'))) as unknown as { early: { v1: { Echo: grpc.ServiceClientConstructor } } };
  server = new grpc.Server();
  server.addService(pkg.early.v1.Echo.service, {
    // Answers with the first message, without waiting for the rest (or its end).
    First: (call: grpc.ServerReadableStream<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      call.once('data', (m: Msg) => cb(null, { text: `first: ${m.text}` }));
    },
  });
  const appPort = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  pair = await startSidecarPair(dir, {
    trustDomain: TD,
    apiId: API,
    webId: WEB,
    inbound: [`{ name: grpc, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort}, protocol: grpc }`],
    outbound: (api) => [`{ name: grpc, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.get('inbound/grpc')}, spiffeId: ${API}, protocol: grpc }`],
  });
  client = new pkg.early.v1.Echo(`127.0.0.1:${pair.web.ports.get('outbound/grpc')}`, grpc.credentials.createInsecure()) as unknown as Client;
}, 60_000);

afterAll(async () => {
  client?.close();
  await pair?.stop();
  server?.forceShutdown();
  await cleanup?.();
});

test('a client-streaming call answered after its first message, the client still streaming: OK with the answer, three times', async () => {
  for (let i = 0; i < 3; i++) {
    const outcome = await new Promise<string>((resolve) => {
      const call = client.First((err, m) => resolve(err ? `${grpc.status[err.code]} ${err.details}` : `OK ${m?.text}`));
      call.write({ text: `a${i}` });
      // Goes on streaming after the answer was sent, never ending its side first.
      const more = setInterval(() => {
        if (!call.writable) return clearInterval(more);
        call.write({ text: 'more' }, () => undefined);
      }, 20);
      call.on('error', () => clearInterval(more));
      call.on('status', () => clearInterval(more));
    });
    expect(outcome).toBe(`OK first: a${i}`);
  }
}, 30_000);
