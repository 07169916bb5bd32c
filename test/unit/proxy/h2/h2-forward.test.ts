// forwardStream between real HTTP/2 endpoints on loopback (client → front server → H2Upstream → app): the deadlines
// of a stream (response head, stream idle with bytes either way restarting it, total), what each does before and
// after the response head, resets propagated both ways, and the status and responseFlags the result reports.
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { guardH2Server } from '../../../../proxy/src/h2/h2-error-guard.js';
import { type ForwardResult, forwardStream, type StreamSettings } from '../../../../proxy/src/h2/h2-forward.js';
import { H2Upstream } from '../../../../proxy/src/h2/h2-upstream.js';
import { h2Frame, hpackBlock, rawH2App } from '../../../helpers/raw-h2-app.js';
import { until } from '../../../helpers/until.js';
import { realTimers } from '../../../../shared-io/timers.js';

const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR } = http2.constants;
const closers: (() => void)[] = [];

afterEach(() => {
  for (const c of closers.splice(0)) c();
});

async function listen(server: http2.Http2Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('error', () => undefined);
  });
  closers.push(() => {
    for (const s of sessions) s.destroy();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

interface Rig {
  /** Results of forwarded streams, in the order they ended. */
  readonly results: ForwardResult[];
  /** How each app-side stream ended: its RST code (0 = clean). */
  readonly appEnds: number[];
  /** Deadline cuts reported through onCut (what the listeners count in tessera_requests_rejected_total). */
  readonly cuts: string[];
  request(headers: http2.OutgoingHttpHeaders, body?: (req: http2.ClientHttp2Stream) => void): Promise<{ status: number; headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; data: string; rstCode: number; ms: number }>;
}

/** app (handler) ← H2Upstream ← front (forwardStream with `timeouts`) ← client. */
async function rig(timeouts: Partial<StreamSettings>, grpc: boolean, handler: (stream: http2.ServerHttp2Stream) => void): Promise<Rig> {
  const appEnds: number[] = [];
  const app = http2.createServer();
  app.on('stream', (stream) => {
    stream.on('error', () => undefined);
    stream.on('close', () => appEnds.push(stream.rstCode ?? 0));
    handler(stream);
  });
  const appPort = await listen(app);
  const upstream = new H2Upstream({ nowMs: Date.now, timers: realTimers, authority: `http://127.0.0.1:${appPort}` });
  closers.push(() => upstream.close());
  const results: ForwardResult[] = [];
  const cuts: string[] = [];
  const front = http2.createServer();
  guardH2Server(front, realTimers); // as every listener's server is: forwardStream relies on it
  const t: StreamSettings = { requestMs: 60_000, idleMs: 0, replayBytes: 65_536, nowMs: () => performance.now(), timers: realTimers, onCut: (reason) => cuts.push(reason), ...timeouts };
  front.on('stream', (stream, headers) => {
    const out: http2.OutgoingHttpHeaders = { ':method': headers[':method'], ':path': headers[':path'], 'content-type': headers['content-type'] };
    forwardStream(stream, out, upstream, grpc, t, (r) => results.push(r));
  });
  const frontPort = await listen(front);
  const client = http2.connect(`http://127.0.0.1:${frontPort}`);
  client.on('error', () => undefined);
  closers.push(() => client.destroy());
  return {
    results,
    appEnds,
    cuts,
    request(headers, body) {
      const t0 = performance.now();
      return new Promise((resolve) => {
        const req = client.request({ ':method': 'POST', ':path': '/x', ...(grpc ? { 'content-type': 'application/grpc' } : {}), ...headers }, { endStream: !body });
        let status = 0;
        let got: http2.IncomingHttpHeaders = {};
        let trailers: http2.IncomingHttpHeaders = {};
        let data = '';
        req.on('response', (h) => {
          status = Number(h[':status']);
          got = h;
        });
        req.on('data', (d: Buffer) => {
          data += d;
        });
        req.on('trailers', (h) => {
          trailers = h;
        });
        req.on('error', () => undefined);
        req.on('close', () => resolve({ status, headers: got, trailers, data, rstCode: req.rstCode ?? 0, ms: performance.now() - t0 }));
        body?.(req);
      });
    },
  };
}

/** The app answers a head, one chunk, then stays silent until the stream goes away. */
const headThenSilence = (stream: http2.ServerHttp2Stream) => {
  stream.respond({ ':status': 200 });
  stream.write('first');
};

describe('forwardStream deadlines', () => {
  test('a response that keeps moving runs past requestTimeout and streamIdleTimeout', async () => {
    const r = await rig({ requestMs: 200, idleMs: 300 }, false, (stream) => {
      stream.respond({ ':status': 200 });
      let n = 0;
      const t = setInterval(() => {
        if (++n < 8) return void stream.write(`${n},`);
        clearInterval(t);
        stream.end(`${n}`);
      }, 100);
    });
    const res = await r.request({});
    expect(res).toMatchObject({ status: 200, data: '1,2,3,4,5,6,7,8', rstCode: 0 });
    await until('result', () => r.results.length === 1);
    expect(r.results[0]).toMatchObject({ status: 200 });
    expect(r.results[0]!.responseFlags).toBeUndefined();
    expect(r.cuts).toEqual([]);
  });

  test('an upload that keeps moving outlives requestTimeout and streamIdleTimeout (the head deadline starts once the request is complete)', async () => {
    // Writes 100 ms apart against 1 s limits: a loaded machine may stall a tick for several hundred ms (it did at 300).
    const r = await rig({ requestMs: 1_000, idleMs: 1_000 }, false, (stream) => {
      let body = '';
      stream.on('data', (d: Buffer) => {
        body += d;
      });
      stream.on('end', () => {
        stream.respond({ ':status': 200 });
        stream.end(body);
      });
    });
    const res = await r.request({}, (req) => {
      let n = 0;
      const t = setInterval(() => {
        if (++n < 25) return void req.write('.');
        clearInterval(t);
        req.end('.');
      }, 100);
    });
    expect(res).toMatchObject({ status: 200, data: '.'.repeat(25), rstCode: 0 });
  });

  test('no bytes either way for idleMs after the head: RST_STREAM CANCEL to the client and the app, status 200 and stream_idle_timeout reported', async () => {
    const r = await rig({ idleMs: 300 }, false, headThenSilence);
    const res = await r.request({});
    expect(res).toMatchObject({ status: 200, data: 'first', rstCode: NGHTTP2_CANCEL });
    expect(res.ms).toBeGreaterThanOrEqual(280);
    expect(res.ms).toBeLessThan(2_000);
    await until('the app stream was cancelled', () => r.appEnds.length === 1);
    expect(r.appEnds).toEqual([NGHTTP2_CANCEL]);
    expect(r.results[0]).toMatchObject({ status: 200, responseFlags: 'stream_idle_timeout', error: 'stream_idle_timeout' });
    expect(r.cuts).toEqual(['stream_idle_timeout']);
  });

  test('gRPC: silence after the head is cut with CANCEL and counted as CANCELLED (1)', async () => {
    const r = await rig({ idleMs: 300 }, true, headThenSilence);
    const res = await r.request({});
    expect(res.rstCode).toBe(NGHTTP2_CANCEL);
    await until('result', () => r.results.length === 1);
    expect(r.results[0]).toMatchObject({ status: 200, grpcStatus: '1', responseFlags: 'stream_idle_timeout' });
  });

  test('the total timeout before the head: 504 total_timeout (HTTP/2), DEADLINE_EXCEEDED trailers-only (gRPC); the app stream cancelled', async () => {
    const silent = () => undefined;
    const h2 = await rig({ totalMs: 300 }, false, silent);
    const res = await h2.request({});
    expect(res.status).toBe(504);
    expect(res.headers['x-tessera-error']).toBe('total_timeout');
    await until('the app stream was cancelled', () => h2.appEnds.length === 1);
    expect(h2.appEnds).toEqual([NGHTTP2_CANCEL]);
    expect(h2.results[0]).toMatchObject({ status: 504, responseFlags: 'total_timeout' });
    const g = await rig({ totalMs: 300 }, true, silent);
    const gres = await g.request({});
    expect(gres).toMatchObject({ status: 200, rstCode: 0 });
    expect(gres.headers['grpc-status']).toBe('4');
    expect(gres.headers['grpc-message']).toBe('total_timeout');
    expect(g.results[0]).toMatchObject({ status: 200, grpcStatus: '4', responseFlags: 'total_timeout' });
  });

  test('the total timeout after the head cuts a stream that is still moving (CANCEL both ways, status 200 kept)', async () => {
    const r = await rig({ totalMs: 400, idleMs: 300 }, false, (stream) => {
      stream.respond({ ':status': 200 });
      const t = setInterval(() => stream.write('.'), 50);
      stream.on('close', () => clearInterval(t));
    });
    const res = await r.request({});
    expect(res.status).toBe(200);
    expect(res.rstCode).toBe(NGHTTP2_CANCEL);
    expect(res.data.length).toBeGreaterThan(3);
    await until('the app stream was cancelled', () => r.appEnds.length === 1);
    expect(r.appEnds).toEqual([NGHTTP2_CANCEL]);
    expect(r.results[0]).toMatchObject({ status: 200, responseFlags: 'total_timeout' });
  });

  test('requestTimeout before the head (HTTP/2): 504 request_timeout; gRPC has none (its client deadline governs)', async () => {
    const late = (stream: http2.ServerHttp2Stream) => {
      const t = setTimeout(() => {
        stream.respond({ ':status': 200 });
        stream.end('late');
      }, 500);
      stream.on('close', () => clearTimeout(t));
    };
    const h2 = await rig({ requestMs: 200 }, false, late);
    expect((await h2.request({})).status).toBe(504);
    expect(h2.results[0]).toMatchObject({ status: 504, responseFlags: 'request_timeout' });
    const g = await rig({ requestMs: 200 }, true, late);
    expect(await g.request({})).toMatchObject({ status: 200, data: 'late' });
  });
});

describe('forwardStream resets', () => {
  test('the client resets: the app stream gets CANCEL; reported as downstream_closed', async () => {
    const r = await rig({}, true, headThenSilence);
    const res = await r.request({}, (req) => {
      req.on('data', () => req.close(NGHTTP2_CANCEL));
    });
    expect(res.rstCode).toBe(NGHTTP2_CANCEL);
    await until('the app stream was cancelled', () => r.appEnds.length === 1);
    expect(r.appEnds).toEqual([NGHTTP2_CANCEL]);
    await until('result', () => r.results.length === 1);
    expect(r.results[0]).toMatchObject({ status: 200, grpcStatus: '1', responseFlags: 'downstream_closed' });
  });

  test('the client leaves before any response: logged as 499 downstream_closed, the app stream cancelled', async () => {
    const r = await rig({}, false, () => undefined);
    await r.request({}, (req) => setTimeout(() => req.close(NGHTTP2_CANCEL), 100));
    await until('the app stream was cancelled', () => r.appEnds.length === 1 && r.results.length === 1);
    expect(r.appEnds).toEqual([NGHTTP2_CANCEL]);
    expect(r.results[0]).toMatchObject({ status: 499, responseFlags: 'downstream_closed', error: 'downstream_reset' });
  });

  test('the app resets after the head: the client gets its code; reported as upstream_closed', async () => {
    const r = await rig({}, false, (stream) => {
      stream.respond({ ':status': 200 });
      stream.write('part', () => setTimeout(() => stream.destroy(new Error('app failed')), 50)); // RST_STREAM INTERNAL_ERROR
    });
    const res = await r.request({});
    expect(res).toMatchObject({ status: 200, data: 'part', rstCode: NGHTTP2_INTERNAL_ERROR });
    await until('result', () => r.results.length === 1);
    expect(r.results[0]).toMatchObject({ status: 200, responseFlags: 'upstream_closed' });
  });
});

describe('forwardStream informational responses', () => {
  test('103 Early Hints from the app reach the client before the final head', async () => {
    const r = await rig({}, false, (stream) => {
      stream.additionalHeaders({ ':status': 103, link: '</a.css>; rel=preload' });
      setTimeout(() => {
        stream.respond({ ':status': 200 });
        stream.end('ok');
      }, 50);
    });
    const hints: http2.IncomingHttpHeaders[] = [];
    const res = await r.request({}, (req) => {
      req.on('headers', (h) => hints.push(h));
      req.end();
    });
    expect(res).toMatchObject({ status: 200, data: 'ok' });
    expect(hints.map((h) => [h[':status'], h.link])).toEqual([[103, '</a.css>; rel=preload']]);
  });

  test('expect: 100-continue: the app\'s 100 reaches the client once, which only then sends its body', async () => {
    const r = await rig({}, false, (stream) => {
      stream.additionalHeaders({ ':status': 100 });
      stream.additionalHeaders({ ':status': 102 });
      let body = '';
      stream.on('data', (d: Buffer) => {
        body += d;
      });
      stream.on('end', () => {
        stream.respond({ ':status': 200 });
        stream.end(`got ${body}`);
      });
    });
    const interim: unknown[] = [];
    const res = await r.request({ expect: '100-continue' }, (req) => {
      req.on('headers', (h) => interim.push(h[':status']));
      req.once('continue', () => req.end('the body'));
    });
    expect(res).toMatchObject({ status: 200, data: 'got the body' });
    // One head per head the app sent (each hop relayed a 100 twice before).
    expect(interim).toEqual([100, 102]);
  });
});

describe('forwardStream: a stream the app refused is sent again within replayBytes (routing.retry.bufferBytes)', () => {
  const { NGHTTP2_REFUSED_STREAM } = http2.constants;
  /** The app refuses its first `refuse` streams once it has read their whole body, then echoes the body's length. */
  const refusing = (refuse: number) => {
    let seen = 0;
    return (stream: http2.ServerHttp2Stream) => {
      const refused = seen++ < refuse;
      let bytes = 0;
      stream.on('data', (d: Buffer) => {
        bytes += d.length;
      });
      stream.on('end', () => {
        if (refused) return stream.close(NGHTTP2_REFUSED_STREAM);
        stream.respond({ ':status': 200 });
        stream.end(`got ${bytes}`);
      });
    };
  };
  const body2k = (req: http2.ClientHttp2Stream) => req.end(Buffer.alloc(2_000, 'b'));

  test('a body within the bound is replayed whole on the new stream', async () => {
    const r = await rig({ replayBytes: 4_096 }, false, refusing(1));
    expect(await r.request({}, body2k)).toMatchObject({ status: 200, data: 'got 2000' });
    expect(r.appEnds).toEqual([NGHTTP2_REFUSED_STREAM, 0]);
  });

  test('a body past the bound is not sent again: 502 upstream_reset', async () => {
    const r = await rig({ replayBytes: 1_000 }, false, refusing(1));
    expect(await r.request({}, body2k)).toMatchObject({ status: 502, data: 'upstream_reset\n' });
    expect(r.appEnds).toEqual([NGHTTP2_REFUSED_STREAM]);
    await until('result', () => r.results.length === 1);
    expect(r.results[0]).toMatchObject({ status: 502, error: 'upstream_reset' });
  });

  test('a request without a body is sent again even with replayBytes 0, at most twice', async () => {
    const twice = await rig({ replayBytes: 0 }, false, refusing(2));
    expect(await twice.request({ ':method': 'GET' })).toMatchObject({ status: 200, data: 'got 0' });
    const thrice = await rig({ replayBytes: 0 }, false, refusing(3));
    expect(await thrice.request({ ':method': 'GET' })).toMatchObject({ status: 502 });
    expect(thrice.appEnds).toEqual([NGHTTP2_REFUSED_STREAM, NGHTTP2_REFUSED_STREAM, NGHTTP2_REFUSED_STREAM]);
  });
});

describe('forwardStream: fields only the proxy may say (dropResponse)', () => {
  /** The app names a caller and claims a proxy refusal, in its headers and its trailers. */
  const forger = (stream: http2.ServerHttp2Stream) => {
    stream.respond({ ':status': 200, 'x-tessera-error': 'authz_denied', 'x-forwarded-client-cert': 'By=spiffe://x/y', 'x-app': 'kept' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'x-tessera-error': 'authz_denied', 'x-forwarded-client-cert': 'URI=spiffe://x/z' }));
    stream.end('ok');
  };

  test('an app-facing listener drops them from the app\'s headers and trailers; the rest passes', async () => {
    const r = await (await rig({ dropResponse: new Set(['x-tessera-error', 'x-forwarded-client-cert']) }, true, forger)).request({});
    expect(r.headers['x-app']).toBe('kept');
    expect(r.headers['x-tessera-error']).toBeUndefined();
    expect(r.headers['x-forwarded-client-cert']).toBeUndefined();
    expect(r.trailers['grpc-status']).toBe('0');
    expect(r.trailers['x-tessera-error']).toBeUndefined();
    expect(r.trailers['x-forwarded-client-cert']).toBeUndefined();
  });

  test('without it (between two proxies) a peer\'s refusal code passes', async () => {
    const r = await (await rig({}, true, forger)).request({});
    expect(r.headers['x-tessera-error']).toBe('authz_denied');
    expect(r.trailers['x-tessera-error']).toBe('authz_denied');
  });
});

describe('forwardStream: nothing an upstream or a client does throws (an uncaught exception exits the proxy)', () => {
  /** A raw h2c app answering every request with `:status: <status>`: valid HTTP/2 (3 digits), refused by node:http2's respond(). */
  async function rawStatusApp(status: string): Promise<number> {
    const head = hpackBlock([[':status', status]]);
    const app = rawH2App((s, id) => s.write(h2Frame(1, 0x4 | 0x1, id, head))); // HEADERS, END_HEADERS | END_STREAM
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    closers.push(() => app.close());
    return (app.address() as AddressInfo).port;
  }

  test.each([false, true])('an app answering `:status: 600` (grpc: %s): 502 bad_upstream_response (gRPC: UNAVAILABLE), never a throw', async (grpc) => {
    const upstream = new H2Upstream({ nowMs: Date.now, timers: realTimers, authority: `http://127.0.0.1:${await rawStatusApp('600')}` });
    closers.push(() => upstream.close());
    const results: ForwardResult[] = [];
    const front = http2.createServer();
  guardH2Server(front, realTimers); // as every listener's server is: forwardStream relies on it
    front.on('stream', (stream, headers) => forwardStream(stream, { ':method': 'GET', ':path': String(headers[':path']) }, upstream, grpc, { requestMs: 60_000, idleMs: 0, replayBytes: 0, nowMs: () => performance.now(), timers: realTimers }, (r) => results.push(r)));
    const client = http2.connect(`http://127.0.0.1:${await listen(front)}`);
    client.on('error', () => undefined);
    closers.push(() => client.destroy());
    const got = await new Promise<http2.IncomingHttpHeaders>((resolve) => {
      const req = client.request({ ':path': '/x' });
      req.on('response', (h) => {
        req.resume();
        req.on('end', () => resolve(h));
      });
    });
    if (grpc) expect(got).toMatchObject({ ':status': 200, 'grpc-status': '14', 'grpc-message': 'bad_upstream_response' });
    else expect(got).toMatchObject({ ':status': 502, 'x-tessera-error': 'bad_upstream_response' });
    await until('result', () => results.length === 1);
    expect(results[0]).toMatchObject({ status: grpc ? 200 : 502, error: 'bad_upstream_response', ...(grpc ? { grpcStatus: '14' } : {}) });
  });

  test('the client resets with NO_ERROR before any response: 499 downstream_closed as with any other code (it was status 0)', async () => {
    const r = await rig({}, false, () => undefined);
    await r.request({}, (req) => setTimeout(() => req.close(http2.constants.NGHTTP2_NO_ERROR), 100));
    await until('the app stream was cancelled', () => r.appEnds.length === 1 && r.results.length === 1);
    expect(r.appEnds).toEqual([NGHTTP2_CANCEL]);
    expect(r.results[0]).toMatchObject({ status: 499, responseFlags: 'downstream_closed', error: 'downstream_reset' });
  });
});
