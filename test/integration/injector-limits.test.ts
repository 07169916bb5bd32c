// The webhook's HTTPS server under misuse (audit 4, B2, C2, E2), over real TLS on loopback with its bounds scaled
// down so nothing waits long: slow and idle clients are cut within their deadlines (checked every interval, not
// every 30 s), connections beyond the cap are dropped, request bodies held at once are capped across requests (429
// with Retry-After) while a normal review still gets through, refusals are logged, TLS 1.2 offers AEAD suites only.
import { request as httpsRequest } from 'node:https';
import { connect as netConnect } from 'node:net';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { afterEach, describe, expect, test } from 'vitest';
import { systemClock } from '../../common/clock.js';
import { type InjectorWebhook, MAX_REVIEW_BYTES, startInjectorWebhook, WEBHOOK_LIMITS, type WebhookLimits } from '../../control-plane/src/injector/webhook-server.js';
import { admissionReview, appPod, INJECTOR_HOST, type ServingPki, servingPki, TEST_CONFIG, testBundlePem } from '../helpers/injector-fixtures.js';
import { until } from '../helpers/until.js';

let webhook: InjectorWebhook | undefined;
let pki: ServingPki;
const logged: { obj: Record<string, unknown>; msg: string }[] = [];
const sockets: { destroy(): void }[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await webhook?.close();
  webhook = undefined;
  logged.length = 0;
});

async function start(limits: Partial<WebhookLimits>, requestTimeoutMs?: number): Promise<number> {
  pki ??= await servingPki();
  const bundle = await testBundlePem();
  const push = (obj: Record<string, unknown>, msg: string) => logged.push({ obj, msg });
  webhook = await startInjectorWebhook({
    listen: '127.0.0.1:0',
    certPem: pki.certPem,
    keyPem: pki.keyPem,
    snapshot: () => ({ config: TEST_CONFIG, bundlePem: () => bundle }),
    logger: { info: push, warn: push, error: push },
    preciseClock: systemClock,
    limits,
    ...(requestTimeoutMs ? { requestTimeoutMs } : {}),
  });
  return webhook.port;
}

function tls(port: number, opts: { ciphers?: string; maxVersion?: 'TLSv1.2' | 'TLSv1.3' } = {}): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: INJECTOR_HOST, ca: pki.caPem, ...opts }, () => resolve(s));
    s.on('error', reject);
    sockets.push(s);
  });
}

/** Milliseconds until the server closes `s`, and what it sent. */
function closedAfter(s: { on(e: 'close', f: () => void): unknown; on(e: 'data', f: (d: Buffer) => void): unknown }): Promise<{ ms: number; got: string }> {
  const t0 = Date.now();
  let got = '';
  s.on('data', (d: Buffer) => (got += d.toString()));
  return new Promise((resolve) => s.on('close', () => resolve({ ms: Date.now() - t0, got })));
}

function post(port: number, body: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, servername: INJECTOR_HOST, ca: pki.caPem, method: 'POST', path: '/inject', headers: { 'content-type': 'application/json', ...headers }, agent: false },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const refused = () => logged.filter((l) => l.msg === 'injector: request refused').map((l) => l.obj);

describe('the defaults are the documented bounds', () => {
  test('a few hundred connections, 5 s handshakes, deadlines checked every second, 15 s idle keep-alive, 8 MiB of bodies', () => {
    expect(WEBHOOK_LIMITS).toMatchObject({
      maxConnections: 256,
      handshakeTimeoutMs: 5_000,
      connectionsCheckingIntervalMs: 1_000,
      keepAliveTimeoutMs: 15_000,
      maxBufferedBytes: 8 << 20,
      maxActiveReviews: 128,
      maxWaitingReviews: 64,
      maxWaitMs: 2_000,
    });
  });
});

describe('slow and idle clients are cut at their deadlines', () => {
  test('no ClientHello: closed at the handshake timeout; no request: 408 at the request timeout; idle keep-alive: closed', async () => {
    const port = await start({ handshakeTimeoutMs: 300, connectionsCheckingIntervalMs: 100, keepAliveTimeoutMs: 300 }, 500);
    const raw = netConnect(port, '127.0.0.1');
    raw.on('error', () => {});
    sockets.push(raw);
    const silent = await tls(port);
    const idle = await tls(port);
    idle.write(`GET /healthz HTTP/1.1\r\nHost: ${INJECTOR_HOST}\r\n\r\n`);
    const [a, b, c] = await Promise.all([closedAfter(raw), closedAfter(silent), closedAfter(idle)]);
    expect(a.ms).toBeLessThan(1_500);
    expect(b.got).toMatch(/^HTTP\/1\.1 408 /);
    expect(b.ms).toBeLessThan(1_500);
    expect(c.got).toMatch(/^HTTP\/1\.1 200 /);
    expect(c.ms).toBeLessThan(2_000);
    await until('the refusals to be logged', () => refused().some((r) => r.status === 408) && refused().some((r) => String(r.reason).startsWith('TLS handshake failed')), 2_000, 20);
  }, 10_000);

  test('a full table makes room for a newcomer: connections that never send a ClientHello, or idle TLS ones, cannot keep a review out (audit 5, N1)', async () => {
    const port = await start({ maxConnections: 4 });
    // The table filled with raw TCP connections that never start TLS, reopened as they are closed (slot-hold.mjs tcp).
    let stop = false;
    const hold = () => {
      if (stop) return;
      const s = netConnect(port, '127.0.0.1');
      s.on('error', () => {});
      s.resume();
      s.on('close', () => setTimeout(hold, 5));
      sockets.push(s);
    };
    for (let i = 0; i < 4; i++) hold();
    await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; i < 3; i++) {
      const ok = await post(port, JSON.stringify(admissionReview(appPod(), { uid: `flooded-${i}` })));
      expect(ok.status).toBe(200);
    }
    // Idle TLS connections (slot-hold.mjs tls): the oldest is closed for the newcomer.
    stop = true;
    const idle = await Promise.all([1, 2, 3, 4].map(() => tls(port)));
    const oneClosed = Promise.race(idle.map((s) => closedAfter(s)));
    const ok = await post(port, JSON.stringify(admissionReview(appPod(), { uid: 'after-idle' })));
    expect(ok.status).toBe(200);
    await oneClosed;
    await until('the evictions to be logged', () => refused().some((r) => String(r.reason).startsWith('connection closed to make room')), 2_000, 20);
  }, 10_000);
});

describe('request bodies held at once are capped across requests', () => {
  test('held large bodies beyond the budget get 429 with Retry-After soon; a normal review still gets through', async () => {
    const port = await start({ maxBufferedBytes: 2 << 20, maxWaitMs: 300, bodyBytesPerSecond: 1 << 30 });
    const declared = 1 << 20;
    // Six clients declare 1 MiB and send most of it, never the end: only two fit the 2 MiB budget.
    const holders = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const s = await tls(port);
        const closed = closedAfter(s);
        s.write(`POST /inject HTTP/1.1\r\nHost: ${INJECTOR_HOST}\r\nContent-Type: application/json\r\nContent-Length: ${declared}\r\n\r\n`);
        s.write(Buffer.alloc(declared - 1000, 0x20));
        return { closed };
      }),
    );
    const ok = await post(port, JSON.stringify(admissionReview(appPod(), { uid: 'limits-1' })));
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).response).toMatchObject({ uid: 'limits-1', allowed: true });
    // Which two fit is the server's choice: four answers come within the wait, the other two hold until cut.
    const settled = await Promise.all(holders.map((h) => Promise.race([h.closed, new Promise<null>((r) => setTimeout(() => r(null), 2_000))])));
    const answers = settled.filter((a): a is { ms: number; got: string } => a !== null);
    expect(answers).toHaveLength(4);
    for (const a of answers) {
      expect(a.got).toMatch(/^HTTP\/1\.1 429 /);
      expect(a.got.toLowerCase()).toContain('retry-after: 1');
      expect(a.ms).toBeLessThan(2_000);
    }
  }, 10_000);


  test('a client that leaves mid-body, or while it waits, gives its place back', async () => {
    const port = await start({ maxActiveReviews: 1, maxWaitMs: 3_000 });
    const partial = `POST /inject HTTP/1.1\r\nHost: ${INJECTOR_HOST}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":`;
    const holder = await tls(port);
    holder.write(partial);
    await new Promise((r) => setTimeout(r, 100));
    const waiter = await tls(port);
    waiter.write(partial);
    await new Promise((r) => setTimeout(r, 100));
    waiter.destroy();
    await new Promise((r) => setTimeout(r, 100));
    holder.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    const ok = await post(port, JSON.stringify(admissionReview(appPod(), { uid: 'after-leavers' })));
    expect(ok.status).toBe(200);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(logged.some((l) => l.msg === 'injector: request failed')).toBe(false);
  });
});

describe('refusals are logged, not only answered', () => {
  test('400 (not JSON), 413 (too large), 400 (content type) and 431 (headers) each leave a line', async () => {
    const port = await start({});
    expect((await post(port, '{"apiVersion": ')).status).toBe(400);
    expect((await post(port, '{}', { 'content-type': 'text/plain' })).status).toBe(400);
    expect((await post(port, Buffer.alloc(MAX_REVIEW_BYTES + 1, 0x20)).catch(() => ({ status: 413 }))).status).toBe(413);
    const big = await tls(port);
    const closed = closedAfter(big);
    big.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect((await closed).got).toMatch(/^HTTP\/1\.1 431 /);
    await until('four refusals to be logged', () => refused().length >= 4, 2_000, 20);
    expect(refused().map((r) => r.status).sort()).toEqual([400, 400, 413, 431]);
    expect(refused().every((r) => r.remote === '127.0.0.1')).toBe(true);
    // The refusals of a request's content name its code (audit 38b, F4); 431 is Node's, before any request.
    const codes = refused().map((r) => `${r.status} ${r.code}`).sort();
    expect(codes).toEqual(['400 TESSERA_ERR_INJECT_BAD_REVIEW', '400 TESSERA_ERR_INJECT_BAD_REVIEW', '413 TESSERA_ERR_INJECT_TOO_LARGE', '431 undefined']);
  });
});

describe('TLS', () => {
  test('TLS 1.2 takes forward-secret AEAD suites only: CBC and SHA-1 suites are refused', async () => {
    const port = await start({});
    const gcm = await tls(port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256' });
    expect(gcm.getCipher().name).toMatch(/GCM/);
    for (const cbc of ['ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384', 'ECDHE-ECDSA-AES128-CCM']) {
      await expect(tls(port, { maxVersion: 'TLSv1.2', ciphers: cbc })).rejects.toThrow();
    }
    expect((await tls(port)).getProtocol()).toBe('TLSv1.3');
  });

  // Audit 62i F1: Node allowed three renegotiations a connection (a full handshake's CPU each) and logged the fourth
  // as a refused request, 400 ERR_TLS_SESSION_ATTACK.
  test('a TLS 1.2 client that asks to renegotiate is refused at the first ask, and a line says so', async () => {
    const port = await start({});
    const s = await tls(port, { maxVersion: 'TLSv1.2' });
    s.on('error', () => {});
    s.resume(); // the renegotiation and the close travel through reads
    const renegotiated = await new Promise<boolean>((resolve) => {
      s.renegotiate({ rejectUnauthorized: false }, (err) => resolve(!err));
      s.once('close', () => resolve(false));
    });
    expect(renegotiated).toBe(false);
    await until('the refusal is logged', () => logged.some((l) => JSON.stringify(l.obj).includes('TLS renegotiation refused')), 5_000, 20);
  });
});
