// Window credit that restores nothing the proxy spent, against real `tessera proxy` processes (outside audit 56b F1):
// a mesh peer with an SVID of the trust domain opens 100 idle streams on the inbound sidecar over mTLS and floods
// them with WINDOW_UPDATEs of 1, 32,767, 32,768 and 65,535 bytes: each session ends with GOAWAY FLOOD and is
// counted as `flood` (before, the credits of half a window or more were never counted: 6.5 million of them in one
// session, a third of a core, never cut). Honest traffic through the two sidecars is never cut for it: uploads of
// 8 MiB echoed back to clients that read slowly, both ways at once, every byte checked.
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import type * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Flag, FrameType, MuxCode, STREAM_WINDOW } from '../../proxy/src/mux/mux-frame.js';
import { proxyMetric, sha256 } from '../helpers/mux-mesh.js';
import { type MuxPeerFixture, startMuxPeerFixture } from '../helpers/mux-peer-fixture.js';
import { frame, type RawPeer, rawMuxClient } from '../helpers/mux-wire.js';
import type { SidecarPair } from '../helpers/sidecar-pair.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const MiB = 1 << 20;
const FAULTS = ['protocol', 'flow_control', 'frame_size', 'flood', 'stream_id', 'write_backlog'];

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

const faults = async (direction: string) => {
  let n = 0;
  for (const reason of FAULTS) n += await proxyMetric(direction === 'inbound' ? pair.api : pair.web, 'tessera_mux_sessions_ended_total', { direction, reason });
  return n;
};

/** An upload of `body` to the app's echo through web, its answer read with a pause every 16 reads. */
function slowEcho(body: Buffer): Promise<{ status: number; bytes: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: pair.web.ports.get('outbound/api')!, path: '/v1/echo', method: 'POST', agent: false, headers: { 'content-length': body.length } }, (res) => {
      const h = createHash('sha256');
      let bytes = 0;
      let reads = 0;
      res.on('data', (d: Buffer) => {
        bytes += d.length;
        h.update(d);
        if (++reads % 16 !== 0) return;
        res.pause();
        setTimeout(() => res.resume(), 5);
      });
      res.on('end', () => resolve({ status: res.statusCode!, bytes, sha256: h.digest('hex') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    // Written in 64 KiB pieces: the upload and the echoed download move at once.
    let at = 0;
    const pump = () => {
      while (at < body.length) {
        const ok = req.write(body.subarray(at, at + 64 * 1024));
        at += 64 * 1024;
        if (!ok) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

describe('a mesh peer that credits window the proxy never spent', () => {
  test.each([1, STREAM_WINDOW / 2 - 1, STREAM_WINDOW / 2, STREAM_WINDOW - 1])('credits of %i over 100 idle streams: GOAWAY FLOOD, counted', async (increment) => {
    const before = await proxyMetric(pair.api, 'tessera_mux_sessions_ended_total', { direction: 'inbound', reason: 'flood' });
    const raw = await muxClient();
    const ids = Array.from({ length: 100 }, (_, k) => 2 * k + 1);
    raw.write(...ids.map((id) => frame(FrameType.Data, Flag.Syn, 0, id, 0)));
    // 6,000 credits, 60 a stream: far from 2^31-1, so only the flood budget can end the session.
    for (let batch = 0; batch < 6 && !raw.closed; batch++) raw.write(Buffer.concat(Array.from({ length: 1_000 }, (_, k) => frame(FrameType.WindowUpdate, 0, 0, ids[k % 100]!, increment))));
    const goaway = await raw.next('GOAWAY', (f) => f.type === FrameType.GoAway, 10_000);
    expect(goaway.code).toBe(MuxCode.Flood);
    await until('the proxy closed the connection', () => raw.closed, 10_000, 20);
    await until('the end counted as flood', async () => (await proxyMetric(pair.api, 'tessera_mux_sessions_ended_total', { direction: 'inbound', reason: 'flood' })) === before + 1, 10_000, 50);
  });

  test('honest traffic is never cut: 4 uploads of 8 MiB echoed back to slow readers through the sidecars', async () => {
    const inbound = await faults('inbound');
    const bodies = Array.from({ length: 4 }, (_, k) => Buffer.alloc(8 * MiB, 0x41 + k));
    const answers = await Promise.all(bodies.map((b) => slowEcho(b)));
    answers.forEach((a, k) => {
      expect(a.status).toBe(200);
      expect(a.bytes).toBe(8 * MiB);
      expect(a.sha256).toBe(sha256(bodies[k]!));
    });
    expect(await faults('inbound')).toBe(inbound);
    expect(await faults('outbound')).toBe(0);
  }, 60_000);
});
