// Config/Watch opens from one workload against the real `tessera control-plane` process (an outside audit, 39b F1:
// one SVID opening and cancelling Watch streams in a loop held the event loop for seconds, since opens were only
// capped by how many are open at once). Past the per-ID open rate an open is refused RESOURCE_EXHAUSTED with its
// code, audited and counted, while another workload's Watch and /ready keep answering.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type ClientSvid, type RunningControlPlane, TD, controlPlaneClients, joinTokenSvid, errorCode, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { sumSeries } from '../helpers/prom-metrics.js';
import { makeTempDir } from '../helpers/run.js';
import { type CollectedStream, collectStream } from '../helpers/stream-collector.js';
import { until } from '../helpers/until.js';

const WEB = `spiffe://${TD}/ns/default/sa/web`;
const API = `spiffe://${TD}/ns/default/sa/api`;
/** Above the configured burst (limits.maxStreamsPerId 128) and what refills meanwhile (1 a second). */
const MAX_OPENS = 600;
const BATCH = 50;

let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane;
let bundlePem: string;

const svidOf = (id: string): Promise<ClientSvid> => joinTokenSvid(cp, bundlePem, id);

function watch(client: ReturnType<typeof controlPlaneClients>): CollectedStream<{ version: string }> {
  return collectStream(client.config.Watch!({}) as grpc.ClientReadableStream<{ version: string }>);
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  cp = await startControlPlaneProcess(dir, await writeControlPlaneConfig(dir, 'limits: { maxStreamsPerId: 128, streamOpensPerSecond: 1 }'));
  bundlePem = await readFile(join(cp.dataDir, 'bundle.pem'), 'utf8');
});
afterAll(async () => {
  const code = await cp?.stop();
  await cleanup();
  expect(code).toBe(0);
});

test('Watch opens from one SPIFFE ID past its rate are refused with the coded status; another ID and /ready are served', async () => {
  const [web, api] = [await svidOf(WEB), await svidOf(API)];
  const apiClient = controlPlaneClients(cp.grpc, bundlePem, api);
  const webClient = controlPlaneClients(cp.grpc, bundlePem, web);
  try {
    const held = watch(apiClient);
    await until('api watching', () => held.seen.length === 1);

    // One connection opening and cancelling in batches, as the audit's churn loop did, until one is refused.
    let served = 0;
    let refused: grpc.ServiceError | undefined;
    for (let opened = 0; opened < MAX_OPENS && !refused; opened += BATCH) {
      const batch = Array.from({ length: BATCH }, () => watch(webClient));
      await until('each open served or refused', () => batch.every((w) => w.seen.length > 0 || w.ended() !== undefined), 30_000);
      served += batch.filter((w) => w.seen.length > 0).length;
      refused = batch.map((w) => w.ended()?.error).find((e) => e !== undefined);
      for (const w of batch) w.cancel();
    }
    expect(refused, `${served} opens served, none refused`).toBeDefined();
    expect([refused!.code, errorCode(refused!)]).toEqual([grpc.status.RESOURCE_EXHAUSTED, 'TESSERA_ERR_STREAM_OPEN_RATE_LIMITED']);
    expect(served).toBeGreaterThanOrEqual(128);

    // Another workload is not affected: its held stream is open, a new one is served, and /ready answers.
    expect(held.ended()).toBeUndefined();
    const fresh = watch(apiClient);
    await until('a new api Watch served', () => fresh.seen.length === 1);
    expect((await fetch(`http://${cp.admin}/ready`)).status).toBe(200);
    // Refused like the other Watch refusals: audited and counted by its code.
    const audit = (await readFile(join(cp.dataDir, 'audit.log'), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(audit.some((l) => l['event'] === 'config.watch_refused' && l['code'] === 'TESSERA_ERR_STREAM_OPEN_RATE_LIMITED')).toBe(true);
    const metrics = await (await fetch(`http://${cp.admin}/metrics`)).text();
    expect(sumSeries(metrics, 'tessera_watch_refusals_total', { service: 'config', code: 'TESSERA_ERR_STREAM_OPEN_RATE_LIMITED' })).toBeGreaterThanOrEqual(1);
    fresh.cancel();
    held.cancel();
  } finally {
    webClient.close();
    apiClient.close();
  }
});
