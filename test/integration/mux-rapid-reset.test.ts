// Rapid reset over the multiplexed transport (outside audit 62g F1): a mesh peer holding an SVID opened streams on an
// inbound listener's tessera-mux/1 session, sent a request and reset each at once, at a rate under the transport's
// flood budget: 19,000 streams of one session reached the app in 10 s, 100 at a time, counted nowhere. The serving
// side now holds the peer's early cancellations (reset within 1 s, before any answer) to the inbound HTTP/2 budget:
// past limits.maxConcurrentStreams of them (100 here) the session is drained (GOAWAY) and `premature_reset` counted
// once; fewer are ordinary cancellations. Real sidecars, a raw mux client as web, a real app.
import type * as tls from 'node:tls';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { Flag, FrameType, MuxCode } from '../../proxy/src/mux/mux-frame.js';
import { proxyMetric } from '../helpers/mux-mesh.js';
import { type MuxPeerFixture, startMuxPeerFixture } from '../helpers/mux-peer-fixture.js';
import { frame, type RawPeer, rawMuxClient } from '../helpers/mux-wire.js';
import type { SidecarPair } from '../helpers/sidecar-pair.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;

let fixture: MuxPeerFixture;
let pair: SidecarPair;
let webTls: tls.ConnectionOptions;

beforeAll(async () => {
  fixture = await startMuxPeerFixture({ trustDomain: TD, apiId: API, webId: WEB });
  ({ pair, webTls } = fixture);
}, 60_000);

afterAll(async () => {
  await fixture?.stop();
});

async function muxClient(): Promise<RawPeer> {
  return rawMuxClient(pair.api.ports.get('inbound/app')!, webTls);
}

/** Opens `count` streams from `firstId` in batches of 25, each a slow GET reset right after its head. */
async function openAndReset(raw: RawPeer, firstId: number, count: number): Promise<void> {
  for (let k = 0; k < count; k += 25) {
    const frames: Buffer[] = [];
    for (let j = k; j < Math.min(count, k + 25); j++) {
      const id = firstId + 2 * j;
      const head = Buffer.from(`GET /v1/slow?ms=300 HTTP/1.1\r\nhost: api\r\n\r\n`, 'latin1');
      frames.push(frame(FrameType.Data, Flag.Syn, 0, id, head.length, head), frame(FrameType.Data, Flag.Rst, MuxCode.Cancel, id, 0));
    }
    raw.write(...frames);
    await new Promise((r) => setTimeout(r, 40));
  }
}

const premature = () => proxyMetric(pair.api, 'tessera_requests_rejected_total', { direction: 'inbound', reason: 'premature_reset' });

test('a peer that resets its streams at once is drained (GOAWAY) past 100 of them, counted once; 60 such cancellations are not', async () => {
  const before = await premature();
  const calm = await muxClient();
  await openAndReset(calm, 1, 60);
  await new Promise((r) => setTimeout(r, 500));
  expect(calm.count((f) => f.type === FrameType.GoAway)).toBe(0);
  calm.socket.destroy();
  const abuser = await muxClient();
  await openAndReset(abuser, 1, 150);
  await abuser.next('GOAWAY', (f) => f.type === FrameType.GoAway, 10_000);
  await until('premature_reset counted', async () => (await premature()) === before + 1, 5_000, 50);
  abuser.socket.destroy();
  // Honest traffic through the pair goes on.
  const res = await fetch(`http://127.0.0.1:${pair.web.ports.get('outbound/api')!}/v1/echo`, { method: 'POST', body: 'ok' });
  expect(res.status).toBe(200);
}, 60_000);
