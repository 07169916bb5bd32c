// End-to-end property of the HTTP/1.1 forwarder: generated client byte streams go through a real Http1Session
// (loopback socket, pooled upstream connections) to an app on llhttp (a node:http server). Every request the app
// parses must be a request Tessera accepted, at the same place in the stream — method, target, end-to-end headers,
// body — whatever the session does on the way (head rewriting, trailer handling, refusals, pipelining).
import net, { type AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Http1Session } from '../../../../proxy/src/http1/http1-session.js';
import type { SessionLimits } from '../../../../proxy/src/http1/http1-session-types.js';
import { ConnectionPool } from '../../../../proxy/src/upstream/connection-pool.js';
import { plainConnector } from '../../../../proxy/src/upstream/connectors.js';
import { fuzzParams, fuzzTimeoutMs } from '../../../helpers/fuzz-params.js';
import { HARNESS_UPGRADES } from '../../../helpers/http1-session-harness.js';
import { requestStream } from '../../../helpers/http1-arbitraries.js';
import { type ParsedMessage, RequestOracle } from '../../../helpers/llhttp-oracle.js';
import { type TesseraMessage, VIEW_LIMITS, tesseraRequests } from '../../../helpers/tessera-http1-view.js';
import { until } from '../../../helpers/until.js';
import { realTimers } from '../../../../shared-io/timers.js';

const LIMITS: SessionLimits = { ...VIEW_LIMITS, headersTimeoutMs: 10_000, idleTimeoutMs: 10_000, requestTimeoutMs: 10_000, streamIdleTimeoutMs: 10_000, minRequestBodyRate: 0 };
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'upgrade']);

/** End-to-end fields only: what the session must pass on unchanged. */
function endToEnd(headers: readonly (readonly [string, string])[]): string {
  const named = new Set(headers.filter(([n]) => n === 'connection').flatMap(([, v]) => v.split(',').map((t) => t.trim().toLowerCase())));
  return JSON.stringify(headers.filter(([n]) => !HOP_BY_HOP.has(n) && !named.has(n) && n !== 'host'));
}

function forwardingDisagreement(expected: readonly TesseraMessage[], app: readonly ParsedMessage[]): string | null {
  if (app.length > expected.length) return `the app received ${app.length} requests; Tessera accepted ${expected.length}`;
  for (let i = 0; i < app.length; i++) {
    const a = app[i]!;
    const m = expected[i]!;
    if (a.start !== m.start || a.target !== m.target) return `request ${i}: Tessera accepted "${m.start} ${m.target}", the app got "${a.start} ${a.target}"`;
    if (endToEnd(a.headers) !== endToEnd(m.headers)) return `request ${i}: headers: Tessera ${endToEnd(m.headers)}, the app ${endToEnd(a.headers)}`;
    if (a.complete && !m.complete) return `request ${i}: the app found the end of a body Tessera had not`;
    if (a.complete && !a.body.equals(m.body)) return `request ${i}: body: Tessera ${JSON.stringify(m.body.toString('latin1'))}, the app ${JSON.stringify(a.body.toString('latin1'))}`;
  }
  return null;
}

describe('HTTP/1.1 forwarding end to end: the app behind a real session reads what Tessera accepted', () => {
  let app: RequestOracle;
  let pool: ConnectionPool;
  let session: Http1Session | undefined;
  let proxy: net.Server;
  let done = 0;
  let forwardedWithBody = 0;

  beforeAll(async () => {
    app = await RequestOracle.start();
    proxy = net.createServer((socket) => {
      session = new Http1Session(socket, {
        limits: LIMITS,
        responseLimits: VIEW_LIMITS,
        upgrades: HARNESS_UPGRADES,
        pool,
        timers: realTimers,
        nowMs: Date.now,
        hooks: { plan: () => ({ forward: true, add: '' }), done: () => done++, rejected: () => undefined },
      });
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    await new Promise<void>((r) => proxy.close(() => r()));
    await app.close();
  });

  const check = async (input: Buffer) => {
    const expected = tesseraRequests(input).messages;
    const complete = expected.filter((m) => m.complete).length;
    // A pool per case, closed at its end: every byte of this case has reached the app before the next case starts.
    pool = new ConnectionPool({ connect: plainConnector('127.0.0.1', app.port, 2_000), maxConnections: 4, maxQueue: 100, idleTimeoutMs: 60_000, nowMs: Date.now, timers: realTimers });
    app.takeAll();
    done = 0;
    const client = net.connect({ host: '127.0.0.1', port: (proxy.address() as AddressInfo).port });
    client.on('error', () => undefined);
    client.resume();
    let closed = false;
    client.on('close', () => {
      closed = true;
    });
    await new Promise<void>((r) => client.once('connect', () => r()));
    client.write(input);
    // Until the session closes the connection, or has finished every request it could (it may refuse more).
    await until('the session to finish the stream', () => closed || done >= complete, 5_000, 2);
    await new Promise((r) => setTimeout(r, closed ? 0 : 5)); // give a partial last request time to go upstream
    client.destroy();
    await until('the session to close', () => session?.closed === true, 5_000, 2);
    pool.close();
    await until('the app to have read everything the pool sent', () => app.openConnections === 0, 5_000, 2);
    const got = app.takeAll();
    forwardedWithBody += got.filter((m) => m.complete && m.body.length > 0).length;
    const d = forwardingDisagreement(expected, got);
    if (d) throw new Error(`${d}\n  input: ${JSON.stringify(input.toString('latin1'))}`);
  };

  test('generated request streams', async () => {
    await fc.assert(fc.asyncProperty(requestStream, check), fuzzParams(0xf0e, 150));
    expect(forwardedWithBody, 'requests with a body that reached the app (the property is not vacuous)').toBeGreaterThan(10);
  }, fuzzTimeoutMs());
});
