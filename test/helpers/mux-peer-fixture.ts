// The set-up of the tests that speak tessera-mux/1 themselves as a mesh peer: the mesh test app behind a sidecar pair
// (api's inbound `app`, web's outbound `api` to it, the multiplexed transport), and web's TLS options, with which a raw
// client (mux-wire.ts rawMuxClient) is web on api's inbound listener. One temp dir; stop() undoes it all.
import { join } from 'node:path';
import type * as tls from 'node:tls';
import { type MeshApp, startMeshApp } from './mux-mesh.js';
import { tlsOptionsOf } from './proxy-process.js';
import { makeTempDir } from './run.js';
import { type SidecarPair, startSidecarPair } from './sidecar-pair.js';

export interface MuxPeerFixture {
  readonly app: MeshApp;
  readonly pair: SidecarPair;
  /** web's certificate, key and bundle: a raw client with them is web. */
  readonly webTls: tls.ConnectionOptions;
  stop(): Promise<void>;
}

export async function startMuxPeerFixture(ids: { readonly trustDomain: string; readonly apiId: string; readonly webId: string }): Promise<MuxPeerFixture> {
  const { dir, cleanup } = await makeTempDir();
  const app = await startMeshApp();
  const pair = await startSidecarPair(dir, {
    ...ids,
    inbound: [`{ name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${app.port}, protocol: http }`],
    outbound: (ports) => [`{ name: api, listen: 127.0.0.1:0, upstream: 127.0.0.1:${ports.get('inbound/app')}, spiffeId: ${ids.apiId} }`],
  });
  const webTls = await tlsOptionsOf({ certFile: join(dir, 'web', 'svid.pem'), keyFile: join(dir, 'web', 'key.pem'), bundleFile: join(dir, 'web', 'bundle.pem') });
  return {
    app,
    pair,
    webTls,
    async stop() {
      await pair.stop();
      await app.close();
      await cleanup();
    },
  };
}
