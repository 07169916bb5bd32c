// A request whose HEADERS carry END_STREAM (a GET, a HEAD) goes on with END_STREAM on its HEADERS at every HTTP/2
// hop: the app sees a stream ended with its head (node:http2's `endAfterHeaders`), not HEADERS then an empty DATA
// frame, and a request with a body still arrives whole. Real proxy processes (edge, outbound h2c, inbound h2), a
// node:http2 app that says what it saw, node:http2 clients; on loopback.
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type H2Stage, STAGE_API, startH2Stage } from '../helpers/h2-stage.js';

let stage: H2Stage;
let app: http2.Http2Server;

/** Answers with what it saw of the request: whether its head ended the stream, and its body. */
function reportingApp(): http2.Http2Server {
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const endAfterHeaders = stream.endAfterHeaders;
    let body = '';
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => {
      body += d;
    });
    stream.on('end', () => {
      if (stream.closed) return;
      stream.respond({ ':status': 200, 'content-type': 'application/json' });
      stream.end(JSON.stringify({ endAfterHeaders, body, method: headers[':method'] }));
    });
    stream.on('error', () => undefined);
  });
  return server;
}

beforeAll(async () => {
  app = reportingApp();
  const appPort = await new Promise<number>((r) => app.listen(0, '127.0.0.1', () => r((app.address() as net.AddressInfo).port)));
  stage = await startH2Stage({
    inbound: { 'app-h2': appPort },
    outbound: (inbound) => [`{ name: to-api, listen: 127.0.0.1:0, upstream: 127.0.0.1:${inbound('app-h2')}, spiffeId: ${STAGE_API}, protocol: http2 }`],
    edgeRoutes: (inbound) => [`{ host: "*", pathPrefix: /, upstream: 127.0.0.1:${inbound('app-h2')}, spiffeId: ${STAGE_API}, protocol: http2 }`],
  });
}, 60_000);

afterAll(async () => {
  await stage?.stop();
  await new Promise((r) => app?.close(r));
});

const SURFACES = [
  { name: 'outbound h2c (through the inbound sidecar)', url: () => `http://127.0.0.1:${stage.web.ports.get('outbound/to-api')}`, options: {} },
  { name: 'edge h2 (through the inbound sidecar)', url: () => `https://127.0.0.1:${stage.web.ports.get('edge/public')}`, options: { rejectUnauthorized: false, servername: 'a.example.test' } },
  { name: 'inbound h2', url: () => `https://127.0.0.1:${stage.api.ports.get('inbound/app-h2')}`, options: () => ({ rejectUnauthorized: false, servername: 'api', ...stage.webCred }) },
];

async function ask(url: string, options: http2.SecureClientSessionOptions, method: string, body?: string): Promise<{ status: number; seen: { endAfterHeaders: boolean; body: string; method: string } }> {
  const session = http2.connect(url, options);
  session.on('error', () => undefined);
  try {
    const req = session.request({ ':method': method, ':path': '/public/seen' }, { endStream: body === undefined });
    if (body !== undefined) req.end(body);
    const status = await new Promise<number>((resolve, reject) => {
      req.once('response', (h) => resolve(Number(h[':status'])));
      req.once('error', reject);
    });
    let text = '';
    req.setEncoding('utf8');
    for await (const chunk of req) text += chunk;
    return { status, seen: JSON.parse(text) };
  } finally {
    session.close();
  }
}

describe.each(SURFACES)('$name', (s) => {
  const options = () => (typeof s.options === 'function' ? s.options() : s.options);
  test('a GET whose HEADERS ended the stream reaches the app ended with its HEADERS', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await ask(s.url(), options(), 'GET');
      expect(r).toEqual({ status: 200, seen: { endAfterHeaders: true, body: '', method: 'GET' } });
    }
  });
  test('a POST with a body reaches the app whole, its stream ended by the body', async () => {
    const r = await ask(s.url(), options(), 'POST', 'abc'.repeat(1000));
    expect(r).toEqual({ status: 200, seen: { endAfterHeaders: false, body: 'abc'.repeat(1000), method: 'POST' } });
  });
});
