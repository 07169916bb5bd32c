// Retries over an HTTP/2 (`protocol: http2`) outbound listener routed to a service, with real processes: two
// replicas of SERVICE_H2, one whose app answers 502. As over HTTP/1.1 (audit 29a F1), a GET answered with a 5xx head,
// or reset before any head (its replica's proxy killed with SIGKILL), goes to the other endpoint, counted in
// tessera_retries_total; a POST is not retried (the failing app sees it exactly once), unless the listener is
// `retryable: true`; a gRPC call is never replayed, even there. A failing endpoint is left out of the draw after
// two failures in a row until its failure penalty fades (audit 57c F2): each test that needs it to take attempts
// first waits for that.
import { connect } from 'node:http2';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { endpointsView, failures, h2Load, ID_HEADER, Mesh, type ReplicaApp, SERVICE_H2 } from '../helpers/mesh-replicas.js';
import { metricsText, sumSeries } from '../helpers/prom-metrics.js';
import { makeTempDir } from '../helpers/run.js';
import { until } from '../helpers/until.js';

/** No ejection: the failing endpoint must come back into the draw for every test (mesh.untilDrawn). */
const ROUTING = 'routing: { outlier: { consecutiveFailures: 1000 } }\n';

let mesh: Mesh;
let cleanup: () => Promise<void>;
/** r0's h2c app, the failing one. */
let bad: ReplicaApp;
let good: ReplicaApp;

beforeAll(async () => {
  let dir: string;
  ({ dir, cleanup } = await makeTempDir());
  // The caller has a second h2 listener, `retryable: true` (its own balancer), rather than a second caller: a
  // proxy start less.
  const h2r = `  - { name: h2r, listen: 127.0.0.1:0, service: ${SERVICE_H2}, protocol: http2, retryable: true }\n`;
  mesh = await Mesh.start(dir, { replicas: 2, h2: true, clientTail: ROUTING, clientListeners: h2r });
  await mesh.waitUntilAllAnswer();
  const ready = async (listener: string) => ((await endpointsView(mesh.client.admin))[SERVICE_H2] ?? []).filter((e) => e.listener === listener && e.state === 'ready').length === 2;
  await until('the caller knows both h2 endpoints', () => ready('api-h2'), 30_000, 100);
  await until('its retryable listener knows both h2 endpoints', () => ready('h2r'), 30_000, 100);
  bad = mesh.replicas.find((r) => r.name === 'r0')!.h2app!;
  good = mesh.replicas.find((r) => r.name === 'r1')!.h2app!;
}, 120_000);

afterAll(async () => {
  await mesh?.close();
  await cleanup?.();
});

interface Answer {
  readonly id: string;
  readonly status: number;
  readonly replica: string;
  readonly grpcStatus?: string;
}

/**
 * `n` calls with `method` (and a small body; gRPC: a gRPC frame) over one h2c connection to `port`, all at once: with
 * requests in flight on both endpoints, the balancer (latency × load) places some on each.
 */
async function calls(port: number, n: number, method: 'GET' | 'POST', prefix: string, grpc = false): Promise<Answer[]> {
  const session = connect(`http://127.0.0.1:${port}`);
  session.on('error', () => undefined);
  const one = (id: string) =>
    new Promise<Answer>((resolve) => {
      const headers = { ':method': method, ':path': grpc ? '/test.Echo/Say' : `/${prefix}`, [ID_HEADER]: id, ...(grpc ? { 'content-type': 'application/grpc', te: 'trailers' } : {}) };
      const s = session.request(headers, { endStream: method === 'GET' });
      let status = 0;
      let replica = '';
      let grpcStatus: string | undefined;
      s.on('response', (h) => {
        status = Number(h[':status']);
        replica = String(h['x-replica'] ?? '');
        if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
      });
      s.on('trailers', (h) => {
        if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
      });
      s.resume();
      s.on('close', () => resolve({ id, status, replica, ...(grpcStatus !== undefined ? { grpcStatus } : {}) }));
      s.on('error', () => undefined);
      s.setTimeout(10_000, () => s.close());
      if (method === 'POST') s.end(grpc ? Buffer.from([0, 0, 0, 0, 2, 8, 1]) : JSON.stringify({ id }));
    });
  try {
    return await Promise.all(Array.from({ length: n }, (_, i) => one(`${prefix}-${i}`)));
  } finally {
    session.close();
  }
}

const seen = (app: ReplicaApp, id: string) => app.seen.get(id) ?? 0;

/** r0's host: its endpoints are the failing ones. */
const BAD_HOST = '127.0.0.2';

describe('mesh routing over HTTP/2: retries', () => {
  test('GETs answered 502 by one endpoint all succeed on the other, counted as status_5xx retries', async () => {
    bad.status = 502;
    const before = bad.received;
    const out = await h2Load({ port: mesh.port('api-h2'), concurrency: 4, total: 40, path: '/h2-get-5xx' });
    expect(failures(out)).toEqual([]);
    expect(out.every((o) => o.replica === 'r1')).toBe(true);
    // The failing endpoint was tried (and its 502 discarded): the retries are what made these succeed.
    const atBad = bad.received - before;
    expect(atBad).toBeGreaterThan(0);
    const m = await metricsText(mesh.client.admin);
    expect(sumSeries(m, 'tessera_retries_total', { service: SERVICE_H2, reason: 'status_5xx' })).toBeGreaterThanOrEqual(atBad);
  }, 60_000);

  test('a POST answered 502 is not retried: the failing app saw it once and the client got its 502', async () => {
    bad.status = 502;
    await mesh.untilDrawn(SERVICE_H2, 'api-h2', BAD_HOST);
    const out = await calls(mesh.port('api-h2'), 30, 'POST', 'h2-post');
    const atBad = out.filter((o) => seen(bad, o.id) > 0);
    expect(atBad.length).toBeGreaterThan(0);
    for (const o of out) expect(seen(bad, o.id) + seen(good, o.id), o.id).toBe(1);
    for (const o of atBad) expect(o.status, o.id).toBe(502);
    for (const o of out.filter((x) => seen(good, x.id) > 0)) expect(o.status, o.id).toBe(200);
  }, 60_000);

  test('on a retryable listener a POST answered 502 goes to the other endpoint; a gRPC call is never replayed', async () => {
    bad.status = 502;
    const port = mesh.client.ports.get('outbound/h2r')!;
    await mesh.untilDrawn(SERVICE_H2, 'h2r', BAD_HOST);
    const posts = await calls(port, 30, 'POST', 'h2r-post');
    expect(posts.filter((o) => o.status !== 200 || o.replica !== 'r1')).toEqual([]);
    expect(posts.filter((o) => seen(bad, o.id) === 1).length).toBeGreaterThan(0);
    for (const o of posts) expect(seen(good, o.id), o.id).toBe(1);
    await mesh.untilDrawn(SERVICE_H2, 'h2r', BAD_HOST);
    const grpc = await calls(port, 30, 'POST', 'h2r-grpc', true);
    const atBad = grpc.filter((o) => seen(bad, o.id) > 0);
    expect(atBad.length).toBeGreaterThan(0);
    for (const o of grpc) expect(seen(bad, o.id) + seen(good, o.id), o.id).toBe(1);
    // The failing app's own answer reached the client: nothing was sent again.
    for (const o of atBad) expect(o.status, o.id).toBe(502);
  }, 60_000);

  test('GETs in flight at an endpoint whose proxy is killed (reset before any head) succeed on the other, counted as reset', async () => {
    bad.status = 200;
    bad.delayMs = 5_000;
    const victim = mesh.replicas.find((r) => r.name === 'r0')!;
    await mesh.untilDrawn(SERVICE_H2, 'api-h2', BAD_HOST);
    const before = bad.received;
    const load = h2Load({ port: mesh.port('api-h2'), concurrency: 8, total: 40, path: '/h2-get-reset' });
    await until('GETs waiting at the victim', () => bad.received > before, 15_000, 5);
    victim.proxy.child.kill('SIGKILL');
    const out = await load;
    expect(failures(out)).toEqual([]);
    expect(out.every((o) => o.replica === 'r1')).toBe(true);
    const m = await metricsText(mesh.client.admin);
    expect(sumSeries(m, 'tessera_retries_total', { service: SERVICE_H2, reason: 'reset' })).toBeGreaterThan(0);
  }, 60_000);
});
