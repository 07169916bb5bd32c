// Secure naming of the control plane on a real TLS gRPC connection to 127.0.0.1: the server must present
// spiffe://<td>/tessera/control-plane chaining to the bundle of its own trust domain; the proxy's SVID is the
// client certificate when renewing. (The SpiffeWorkloadAPI service is only a convenient vehicle for a call.)
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, test } from 'vitest';
import { systemClock } from '../../../../common/clock.js';
import { TrustBundle, TrustBundleSet } from '../../../../common/spiffe/trust-bundle.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { channelOptions, controlPlaneCredentials } from '../../../../proxy/src/identity/control-plane-credentials.js';
import { loadProtoFile, serviceAt } from '../../../../shared-io/proto-loader.js';
import { issuedSvid } from '../../../helpers/issued-svid.js';
import { type MintedSvid, TestCa } from '../../../helpers/test-ca.js';

const TD = TrustDomain.parse('example.org');
const Service = serviceAt(loadProtoFile('spiffe/workload/workload.proto'), 'SpiffeWorkloadAPI');

async function startServer(svid: MintedSvid, clientCa: string | null): Promise<{ port: number; server: grpc.Server; peers: string[] }> {
  const server = new grpc.Server();
  const peers: string[] = [];
  server.addService(Service.service, {
    FetchJWTSVID: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      peers.push(String(call.getAuthContext().sslPeerCertificate?.subjectaltname ?? ''));
      cb(null, { svids: [] });
    },
  });
  const creds = grpc.ServerCredentials.createSsl(clientCa ? Buffer.from(clientCa) : null, [{ private_key: Buffer.from(svid.keyPem), cert_chain: Buffer.from(svid.chainPem) }], clientCa !== null);
  const port = await new Promise<number>((ok, fail) => server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? fail(e) : ok(p))));
  return { port, server, peers };
}

function call(port: number, creds: grpc.ChannelCredentials): Promise<grpc.ServiceError | null> {
  const client = new Service(`127.0.0.1:${port}`, creds, channelOptions());
  return new Promise((ok) =>
    client.FetchJWTSVID({}, { deadline: Date.now() + 5_000 }, (err: grpc.ServiceError | null) => {
      client.close();
      ok(err);
    }),
  );
}

describe('control-plane credentials', () => {
  const servers: grpc.Server[] = [];
  afterEach(() => {
    for (const s of servers.splice(0)) s.forceShutdown();
  });

  test('accepts the control plane ID, rejects any other ID or a foreign trust domain', async () => {
    const ca = await TestCa.create();
    const bundles = new TrustBundleSet([TrustBundle.parse(TD, ca.bundlePem())]);
    const good = await startServer(await ca.mintSvid('spiffe://example.org/tessera/control-plane'), null);
    const impostor = await startServer(await ca.mintSvid('spiffe://example.org/ns/default/sa/api'), null);
    const evil = await TestCa.create({ trustDomain: 'evil.org' });
    const foreign = await startServer(await evil.mintSvid('spiffe://example.org/tessera/control-plane'), null);
    servers.push(good.server, impostor.server, foreign.server);
    // The foreign CA is trusted for evil.org only: it must not be able to name example.org's control plane.
    const withEvil = bundles.with(TrustBundle.parse('evil.org', evil.bundlePem()));
    const creds = () => controlPlaneCredentials({ bundles: withEvil, trustDomain: TD, clock: systemClock });
    expect(await call(good.port, creds())).toBeNull();
    const e1 = await call(impostor.port, creds());
    expect(e1?.code).toBe(grpc.status.UNAVAILABLE);
    expect(e1?.details).toMatch(/control plane identity rejected/);
    const e2 = await call(foreign.port, creds());
    expect(e2?.code).toBe(grpc.status.UNAVAILABLE);
  });

  test('presents the current SVID as client certificate (mTLS renewal)', async () => {
    const ca = await TestCa.create();
    const bundles = new TrustBundleSet([TrustBundle.parse(TD, ca.bundlePem())]);
    const srv = await startServer(await ca.mintSvid('spiffe://example.org/tessera/control-plane'), ca.bundlePem());
    servers.push(srv.server);
    const mine = await ca.mintSvid('spiffe://example.org/ns/default/sa/web');
    expect(await call(srv.port, controlPlaneCredentials({ bundles, trustDomain: TD, clock: systemClock, clientSvid: issuedSvid(mine, ca, 'spiffe://example.org/ns/default/sa/web') }))).toBeNull();
    expect(srv.peers).toEqual(['URI:spiffe://example.org/ns/default/sa/web']);
    // Without a client certificate the same server refuses the connection.
    expect((await call(srv.port, controlPlaneCredentials({ bundles, trustDomain: TD, clock: systemClock })))?.code).toBe(grpc.status.UNAVAILABLE);
  });
});
