// forwardStream to a balanced service between real HTTP/2 endpoints on loopback (client → front → ExchangeRoute of
// two H2Upstreams → apps): an attempt answered with a 5xx head, or reset before any head, goes to the other endpoint
// when the request may be sent twice (StreamSettings.replayable) and its whole body is held, the 5xx discarded and
// its stream cancelled; otherwise the first answer stands, as over HTTP/1.1. Interim heads are relayed either way.
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import type { ServiceEndpoint } from '../../../../common/routing/service-endpoint.js';
import { DEFAULT_ROUTING } from '../../../../proxy/src/config/routing-config.js';
import { guardH2Server } from '../../../../proxy/src/h2/h2-error-guard.js';
import { type ForwardResult, forwardStream, type StreamSettings } from '../../../../proxy/src/h2/h2-forward.js';
import { H2Upstream } from '../../../../proxy/src/h2/h2-upstream.js';
import { ExchangeRoute, exchangeOutcome, type RetryReason, type RouteDeps } from '../../../../proxy/src/routing/exchange-route.js';
import type { AttemptOutcome, Lease } from '../../../../proxy/src/routing/lease.js';
import { until } from '../../../helpers/until.js';
import { realTimers } from '../../../../shared-io/timers.js';

const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR } = http2.constants;
const closers: (() => void)[] = [];

afterEach(() => {
  for (const c of closers.splice(0)) c();
});

type App = (stream: http2.ServerHttp2Stream, body: string) => void;

interface AppRecord {
  /** Request bodies received, one per stream. */
  readonly bodies: string[];
  /** How each of its streams ended: its RST code (0 = clean). */
  readonly ends: number[];
}

async function app(handler: App): Promise<{ upstream: H2Upstream; rec: AppRecord }> {
  const rec: AppRecord = { bodies: [], ends: [] };
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('error', () => undefined);
  });
  server.on('stream', (stream) => {
    stream.on('error', () => undefined);
    stream.on('close', () => rec.ends.push(stream.rstCode ?? 0));
    let body = '';
    stream.on('data', (d: Buffer) => {
      body += d;
    });
    stream.on('end', () => {
      rec.bodies.push(body);
      handler(stream, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const upstream = new H2Upstream({ nowMs: Date.now, timers: realTimers, authority: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
  closers.push(() => {
    upstream.close();
    for (const s of sessions) s.destroy();
    server.close();
  });
  return { upstream, rec };
}

const ok: App = (stream, body) => {
  stream.respond({ ':status': 200, 'x-replica': 'good' });
  stream.end(`good:${body}`);
};

interface Rig {
  readonly bad: AppRecord;
  readonly good: AppRecord;
  readonly retries: RetryReason[];
  /** The endpoints whose lease was told a stream was refused (charged). */
  readonly refusedAt: string[];
  /** Each attempt's end: endpoint and outcome. */
  readonly attempts: [string, AttemptOutcome][];
  readonly results: ForwardResult[];
  request(method: string, body?: string): Promise<{ status: number; interim: number[]; data: string }>;
  /** A request whose body stops after `part` and never ends: resolves with the status the client saw. */
  stall(method: string, part: string): Promise<number>;
}

/**
 * Two endpoints, `bad` always picked first (a deterministic pick: the first not tried), the real route, budget-free
 * deps (every retry allowed), backoff 1 ms. `replayable` as the listener decides it.
 */
async function rig(badApp: App, replayable: boolean, settings: Partial<StreamSettings> = {}): Promise<Rig> {
  const bad = await app(badApp);
  const good = await app(ok);
  const retries: RetryReason[] = [];
  const attempts: [string, AttemptOutcome][] = [];
  const refusedAt: string[] = [];
  const lease = (address: string, resource: H2Upstream): Lease<H2Upstream> => ({ address, endpoint: {} as ServiceEndpoint, resource, observe: () => undefined, refused: () => void refusedAt.push(address), blame: () => undefined, end: (o) => void attempts.push([address, o]) });
  const endpoints: [string, H2Upstream][] = [
    ['bad', bad.upstream],
    ['good', good.upstream],
  ];
  const deps: RouteDeps<H2Upstream> = {
    service: 'api',
    pick: (exclude) => {
      const e = endpoints.find(([a]) => !exclude?.has(a));
      return e ? lease(e[0], e[1]) : undefined;
    },
    budget: { deposit: () => undefined, tryWithdraw: () => true, refund: () => undefined },
    retry: { ...DEFAULT_ROUTING.retry, backoffBaseMs: 1, backoffMaxMs: 1 },
    headTimeoutMs: 60_000,
    nowMs: () => performance.now(),
    random: () => 0.5,
    onRetry: (_s, r) => retries.push(r),
    onAttempt: () => undefined,
    onLatency: () => undefined,
  };
  const results: ForwardResult[] = [];
  const front = http2.createServer();
  guardH2Server(front, realTimers);
  const t: StreamSettings = { requestMs: 60_000, idleMs: 0, replayBytes: 65_536, nowMs: () => performance.now(), timers: realTimers, replayable, ...settings };
  front.on('stream', (stream, headers) => {
    const route = ExchangeRoute.open(deps)!;
    const out: http2.OutgoingHttpHeaders = { ':method': headers[':method'], ':path': headers[':path'] };
    forwardStream(stream, out, route, false, t, (r) => {
      route.end(exchangeOutcome(r.status, r.error, r.responseFlags, undefined, r.requestComplete, r.heldUpstream === true));
      results.push(r);
    });
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  const client = http2.connect(`http://127.0.0.1:${(front.address() as AddressInfo).port}`);
  client.on('error', () => undefined);
  closers.push(() => {
    client.destroy();
    front.close();
  });
  return {
    bad: bad.rec,
    good: good.rec,
    retries,
    refusedAt,
    attempts,
    results,
    request(method, body) {
      return new Promise((resolve) => {
        const req = client.request({ ':method': method, ':path': '/x' }, { endStream: body === undefined });
        let status = 0;
        let data = '';
        const interim: number[] = [];
        req.on('headers', (h) => void interim.push(Number(h[':status'])));
        req.on('response', (h) => {
          status = Number(h[':status']);
        });
        req.on('data', (d: Buffer) => {
          data += d;
        });
        req.on('error', () => undefined);
        req.on('close', () => resolve({ status, interim, data }));
        if (body !== undefined) req.end(body);
      });
    },
    stall(method, part) {
      return new Promise((resolve) => {
        const req = client.request({ ':method': method, ':path': '/x' }, { endStream: false });
        let status = 0;
        req.on('response', (h) => {
          status = Number(h[':status']);
        });
        req.on('error', () => undefined);
        // The answer ends the response while the client's side stays open (it never ended its body).
        const over = () => {
          resolve(status);
          req.close();
        };
        req.on('end', over);
        req.on('close', over);
        req.resume();
        req.write(part);
      });
    },
  };
}

const answer502: App = (stream) => {
  stream.respond({ ':status': 502, 'x-replica': 'bad' });
  stream.end('bad gateway from the app');
};
const reset: App = (stream) => stream.close(NGHTTP2_INTERNAL_ERROR);

describe('forwardStream to a balanced service: retries after bytes were sent', () => {
  test('a GET answered 502 goes to the other endpoint: the client sees only its 200, the 5xx stream is cancelled', async () => {
    // A 502 whose body is still coming: the proxy stops it with CANCEL.
    const r = await rig((stream) => {
      stream.respond({ ':status': 502, 'x-replica': 'bad' });
      stream.write('bad gateway, more to come');
    }, true);
    const res = await r.request('GET');
    expect(res).toMatchObject({ status: 200, data: 'good:' });
    expect(r.retries).toEqual(['status_5xx']);
    await until('attempts ended', () => r.attempts.length === 2 && r.bad.ends.length === 1);
    expect(r.attempts).toEqual([
      ['bad', 'status_5xx'],
      ['good', 'success'],
    ]);
    expect(r.bad.ends).toEqual([NGHTTP2_CANCEL]);
    expect(r.results[0]).toMatchObject({ status: 200 });
  });

  test('a retryable request body is sent again whole to the other endpoint', async () => {
    const r = await rig(answer502, true);
    const res = await r.request('POST', 'payload');
    expect(res).toMatchObject({ status: 200, data: 'good:payload' });
    expect(r.bad.bodies).toEqual(['payload']);
    expect(r.good.bodies).toEqual(['payload']);
  });

  test('a stream the endpoint refused (REFUSED_STREAM: not processed) goes again to it, counted as refused, not charged to it', async () => {
    let first = true;
    const r = await rig((stream, body) => {
      if (first) {
        first = false;
        return stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      }
      stream.respond({ ':status': 200, 'x-replica': 'bad' });
      stream.end(`bad:${body}`);
    }, false);
    const res = await r.request('POST', 'payload');
    expect(res).toMatchObject({ status: 200, data: 'bad:payload' });
    expect(r.retries).toEqual(['refused']);
    expect(r.refusedAt).toEqual([]);
    expect(r.bad.bodies).toEqual(['payload', 'payload']);
    expect(r.good.bodies).toEqual([]);
  });

  test('a GET reset before any head goes to the other endpoint, counted as reset', async () => {
    const r = await rig(reset, true);
    const res = await r.request('GET');
    expect(res).toMatchObject({ status: 200, data: 'good:' });
    expect(r.retries).toEqual(['reset']);
    await until('attempts ended', () => r.attempts.length === 2);
    expect(r.attempts[0]).toEqual(['bad', 'reset']);
  });

  test('an interim head is relayed and the 5xx after it still retried, as over HTTP/1.1', async () => {
    const r = await rig((stream) => {
      stream.additionalHeaders({ ':status': 103, link: '</a.css>; rel=preload' });
      answer502(stream, '');
    }, true);
    const res = await r.request('GET');
    expect(res).toMatchObject({ status: 200, interim: [103], data: 'good:' });
    expect(r.retries).toEqual(['status_5xx']);
  });

  test('a malformed answer (more interim heads than allowed) goes to the other endpoint as bad_response, as over HTTP/1.1', async () => {
    const r = await rig((stream) => {
      for (let i = 0; i < 12; i++) stream.additionalHeaders({ ':status': 103, link: `</${i}.css>; rel=preload` });
      stream.respond({ ':status': 200 });
      stream.end('after a flood of hints');
    }, true);
    const res = await r.request('GET');
    expect(res).toMatchObject({ status: 200, data: 'good:' });
    expect(r.retries).toEqual(['bad_response']);
    await until('attempts ended', () => r.attempts.length === 2);
    expect(r.attempts).toEqual([
      ['bad', 'bad_response'],
      ['good', 'success'],
    ]);
    // What the first endpoint sent within the allowance reached the client, as HTTP allows any number of them.
    expect(res.interim.length).toBeLessThanOrEqual(8);
  });

  test('a request that may not be sent twice gets the first answer: its 502 as the app sent it, or 502 upstream_reset', async () => {
    const five = await rig(answer502, false);
    expect(await five.request('POST', 'once')).toMatchObject({ status: 502, data: 'bad gateway from the app' });
    expect(five.good.bodies).toEqual([]);
    expect(five.retries).toEqual([]);
    const rst = await rig(reset, false);
    expect(await rst.request('POST', 'once')).toMatchObject({ status: 502, data: 'upstream_reset\n' });
    expect(rst.good.bodies).toEqual([]);
    await until('attempt ended', () => rst.attempts.length === 1);
    expect(rst.attempts).toEqual([['bad', 'reset']]);
  });

  test('a body past replayBytes is not held: answered, never sent twice', async () => {
    const r = await rig(answer502, true, { replayBytes: 4 });
    expect(await r.request('POST', 'longer than four')).toMatchObject({ status: 502 });
    expect(r.good.bodies).toEqual([]);
  });
});

describe('forwardStream to a balanced service: a client that stalls its own upload (audit 30c F1)', () => {
  test('is answered 408, as over HTTP/1.1, and its attempt is cancelled: the endpoint is not charged a 5xx', async () => {
    // The app would answer once the body ended; the cut cancels its stream first (node:http2 then ends its body).
    const r = await rig((stream, body) => void (stream.destroyed || stream.closed || ok(stream, body)), false, { idleMs: 150 });
    expect(await r.stall('PUT', 'half of a body')).toBe(408);
    await until('attempt ended', () => r.attempts.length === 1);
    expect(r.attempts).toEqual([['bad', 'cancelled']]);
    expect(r.results[0]).toMatchObject({ status: 408, error: 'stream_idle_timeout', responseFlags: 'stream_idle_timeout', requestComplete: false });
  });

  test('an upstream that stalls after the whole request is still 504 and the endpoint\'s 5xx', async () => {
    const r = await rig(() => undefined, false, { idleMs: 150 });
    const res = await r.request('PUT', 'whole body');
    expect(res.status).toBe(504);
    await until('attempt ended', () => r.attempts.length === 1);
    expect(r.attempts).toEqual([['bad', 'status_5xx']]);
  });
});
