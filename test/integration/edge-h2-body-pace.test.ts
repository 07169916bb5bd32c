// limits.minRequestBodyRate on the edge's HTTP/2 → HTTP/1.1 bridge (audit 61i F2): each HTTP/2 stream on an `http`
// route takes one connection of the route's pool, and streams trickled a byte a second held a pool of 8 for as long
// as they trickled. Behind its pace after the grace (limits.headersTimeout, 1 s here) a stream is answered 408
// request_body_timeout and its upstream connection goes; one at its pace is answered by the app.
import { writeFile } from 'node:fs/promises';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { edgeConfigYaml } from '../helpers/edge-config.js';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

let cleanup: () => Promise<void>;
let web: TestCa;
let edge: ProxyProcess;
/** The app: reads a request's whole body (its content-length), then answers 201; counts its open connections. */
const app = { server: undefined as net.Server | undefined, port: 0, open: 0 };

beforeAll(async () => {
  let dir: string;
  ({ dir, cleanup } = await makeTempDir());
  const mesh = await TestCa.create({ trustDomain: 'example.org' });
  web = await TestCa.create({ trustDomain: 'web.test', rootName: 'CN=Public Web CA, O=Test' });
  const cert = await web.mintSvid('spiffe://web.test/edge', { dnsSans: ['app.test'] });
  await writeFile(join(dir, 'edge.pem'), cert.chainPem);
  await writeFile(join(dir, 'edge.key'), cert.keyPem, { mode: 0o600 });
  const server = net.createServer((socket) => {
    app.open++;
    socket.on('close', () => app.open--);
    socket.on('error', () => undefined);
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      // Expect: 100-continue is answered at once, the first time the head is seen.
      if (/\r\nexpect: *100-continue\r\n/i.test(text.slice(0, end + 2)) && !text.startsWith('CONTINUED')) {
        socket.write('HTTP/1.1 100 Continue\r\n\r\n');
        text = `CONTINUED${text}`;
        return;
      }
      const length = Number(/content-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
      if (text.length - end - 4 < length) return;
      text = '';
      socket.write('HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n');
    });
  });
  app.server = server;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  app.port = (server.address() as net.AddressInfo).port;
  await writeSvidFiles(mesh, 'spiffe://example.org/ns/edge/sa/gateway', join(dir, 'edge'));
  await writeFile(
    join(dir, 'edge.yaml'),
    edgeConfigYaml({
      routes: [`{ host: app.test, pathPrefix: /, upstream: 127.0.0.1:${app.port}, unsafePlaintext: true }`],
      extra: ['limits: { headersTimeout: 1s, minRequestBodyRate: 100, streamIdleTimeout: 60s }'],
    }),
  );
  edge = await startProxyProcess(join(dir, 'edge.yaml'));
}, 60_000);

afterAll(async () => {
  await edge?.stop();
  await new Promise<void>((r) => (app.server ? app.server.close(() => r()) : r()));
  await cleanup?.();
});

/** A POST of `size` bytes sent `chunk` bytes every `everyMs`; resolves with its status and x-tessera-error. */
function upload(session: http2.ClientHttp2Session, size: number, chunk: number, everyMs: number, extra: Record<string, string> = {}): Promise<{ status: number; error: string | undefined }> {
  return new Promise((resolve) => {
    const r = session.request({ ':method': 'POST', ':path': '/upload', ':authority': 'app.test', 'content-length': String(size), ...extra }, { endStream: false });
    r.on('error', () => undefined);
    let sent = 0;
    const tick = setInterval(() => {
      if (r.closed || sent >= size) return clearInterval(tick);
      const n = Math.min(chunk, size - sent);
      if (n === 0) return; // a client that waits (for a 100 never relayed to it) and sends nothing
      sent += n;
      r.write('x'.repeat(n));
      if (sent >= size) r.end();
    }, everyMs);
    // Answered, the client stops sending (a local answer does not wait for the rest of the body).
    r.on('response', (h) => {
      clearInterval(tick);
      resolve({ status: Number(h[':status']), error: h['x-tessera-error'] as string | undefined });
      r.close();
    });
    r.resume();
    r.on('close', () => {
      clearInterval(tick);
      resolve({ status: 0, error: 'closed without an answer' });
    });
  });
}

test('an HTTP/2 upload behind its pace is answered 408 request_body_timeout and its app connection goes; one at its pace is answered', async () => {
  const session = http2.connect(`https://127.0.0.1:${edge.ports.get('edge/public')!}`, { ca: web.bundlePem(), servername: 'app.test', checkServerIdentity: () => undefined });
  session.on('error', () => undefined);
  try {
    // A byte every 300 ms: 3 a second against 100.
    const started = Date.now();
    const slow = await upload(session, 1_000, 1, 300);
    expect(slow).toEqual({ status: 408, error: 'request_body_timeout' });
    expect(Date.now() - started).toBeLessThan(10_000);
    await until('the app connection of the slow upload closed', () => app.open === 0, 10_000, 20);
    // 60 bytes every 200 ms: 300 a second, for 2 s.
    expect(await upload(session, 600, 60, 200)).toEqual({ status: 201, error: undefined });
    // Audit 61j F1: with Expect: 100-continue and no DATA the pace never started, and the stream held its pool
    // connection until streamIdleTimeout (60 s here). It starts at the app's 100.
    const waited = Date.now();
    expect(await upload(session, 100, 0, 1_000, { expect: '100-continue' })).toEqual({ status: 408, error: 'request_body_timeout' });
    expect(Date.now() - waited).toBeLessThan(10_000);
    // Audit 61j F2: the bridge's cuts were not counted.
    const metrics = await (await fetch(`http://127.0.0.1:${edge.admin}/metrics`)).text();
    const counted = metrics.split('\n').find((l) => l.startsWith('tessera_requests_rejected_total{') && l.includes('direction="edge"') && l.includes('reason="request_body_timeout"'));
    expect(Number(counted?.split(' ').pop())).toBe(2);
    expect(edge.child.exitCode).toBeNull();
  } finally {
    session.close();
  }
}, 30_000);

// Audit 62b F3: after its 408 the bridge left the stream open, and a client that went on trickling held a stream slot.
test('after the 408 of an upload behind its pace, a client that keeps sending is told to stop (RST_STREAM NO_ERROR)', async () => {
  const session = http2.connect(`https://127.0.0.1:${edge.ports.get('edge/public')!}`, { ca: web.bundlePem(), servername: 'app.test', checkServerIdentity: () => undefined });
  session.on('error', () => undefined);
  try {
    const ended = await new Promise<{ status: number; rstCode: number | undefined; afterAnswerMs: number }>((resolve) => {
      const r = session.request({ ':method': 'POST', ':path': '/upload', ':authority': 'app.test', 'content-length': '100000' }, { endStream: false });
      r.on('error', () => undefined);
      let status = 0;
      let answeredAt = 0;
      const tick = setInterval(() => {
        if (!r.closed) r.write('x');
      }, 300);
      r.on('response', (h) => {
        status = Number(h[':status']);
        answeredAt = Date.now();
      });
      r.resume();
      r.on('close', () => {
        clearInterval(tick);
        resolve({ status, rstCode: r.rstCode, afterAnswerMs: Date.now() - answeredAt });
      });
    });
    expect(ended.status).toBe(408);
    expect(ended.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
    // Before, the stream stayed open for as long as the client sent (limits.streamIdleTimeout restarts at each byte).
    expect(ended.afterAnswerMs).toBeLessThan(3_000);
  } finally {
    session.close();
  }
}, 30_000);
