// Admin listener: real HTTP requests on 127.0.0.1:0 for every endpoint, methods, errors and limits.
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { type AdminServer, type AdminServerOptions, startAdminServer } from '../../../../proxy/src/admin/admin-server.js';
import { ProxyMetrics, createProxyRegistry } from '../../../../proxy/src/telemetry/metrics.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { until } from '../../../helpers/until.js';
import { realTimers } from '../../../../shared-io/timers.js';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(server: AdminServer, method: string, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: server.address.port, method, path, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const servers: AdminServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(over: Partial<AdminServerOptions> = {}): Promise<{ server: AdminServer; metrics: ProxyMetrics; errors: string[] }> {
  const registry = createProxyRegistry();
  const metrics = new ProxyMetrics(registry, { defaultMetrics: false });
  const errors: string[] = [];
  const server = await startAdminServer({
    listen: { host: '127.0.0.1', port: 0 },
    registry,
    readiness: () => ({ ready: true }),
    certs: async () => ({ spiffeId: 'spiffe://example.org/ns/default/sa/api', serial: 0x0abcn, notAfter: new Date(0) }),
    config: () => ({ listeners: { inbound: { port: 15006 } }, keyPem: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' }),
    onError: (_e, path) => errors.push(path),
    timers: realTimers,
    ...over,
  });
  servers.push(server);
  return { server, metrics, errors };
}

describe('admin server', () => {
  test('binds port 0 and reports the bound port', async () => {
    const { server } = await start();
    expect(server.address.host).toBe('127.0.0.1');
    expect(server.address.port).toBeGreaterThan(0);
  });

  test('GET /healthz answers ok', async () => {
    const { server } = await start();
    const r = await request(server, 'GET', '/healthz');
    expect(r.status).toBe(200);
    expect(r.body).toBe('ok\n');
    expect(r.headers['content-type']).toMatch(/^text\/plain/);
  });

  test('GET /ready reflects readiness (503 with reason when not ready)', async () => {
    let state: { ready: boolean; reason?: string } = { ready: false, reason: 'no SVID yet' };
    const { server } = await start({ readiness: () => state });
    const notReady = await request(server, 'GET', '/ready');
    expect(notReady.status).toBe(503);
    expect(JSON.parse(notReady.body)).toEqual({ ready: false, reason: 'no SVID yet' });
    state = { ready: true };
    const ready = await request(server, 'GET', '/ready?verbose=1');
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toEqual({ ready: true });
    expect(ready.headers['content-type']).toMatch(/^application\/json/);
  });

  test('GET /metrics serves the Prometheus text format of the injected registry', async () => {
    const { server, metrics } = await start();
    metrics.handshake('inbound', false, 'expired', false, 0.003);
    const r = await request(server, 'GET', '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(r.body).toContain('tessera_tls_handshakes_total{direction="inbound",result="failure",reason="expired",resumed="false"} 1');
    expect(r.body).toContain('# TYPE tessera_tls_handshake_duration_seconds histogram');
  });

  test('GET /certs and /config are pretty JSON; bigints become strings, private keys are blanked', async () => {
    const { server } = await start();
    const certs = await request(server, 'GET', '/certs');
    expect(certs.status).toBe(200);
    expect(certs.headers['content-type']).toMatch(/^application\/json/);
    expect(certs.body).toContain('\n  "spiffeId"');
    expect(JSON.parse(certs.body)).toEqual({ spiffeId: 'spiffe://example.org/ns/default/sa/api', serial: '2748', notAfter: '1970-01-01T00:00:00.000Z' });
    const config = await request(server, 'GET', '/config');
    expect(JSON.parse(config.body)).toEqual({ listeners: { inbound: { port: 15006 } }, keyPem: '[redacted]' });
    expect(config.body).not.toContain('PRIVATE KEY');
  });

  test('HEAD answers headers only', async () => {
    const { server } = await start();
    const r = await request(server, 'HEAD', '/healthz');
    expect(r.status).toBe(200);
    expect(r.body).toBe('');
    expect(r.headers['content-length']).toBe('3');
  });

  test('unknown paths are 404, other methods 405', async () => {
    const { server } = await start();
    expect((await request(server, 'GET', '/nope')).status).toBe(404);
    expect((await request(server, 'GET', '/__proto__')).status).toBe(404);
    const post = await request(server, 'POST', '/metrics');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    expect((await request(server, 'DELETE', '/healthz')).status).toBe(405);
    // There is no /drain endpoint: SIGTERM drains.
    expect((await request(server, 'POST', '/drain')).status).toBe(405);
  });

  test('a throwing provider gives 500 without detail', async () => {
    const { server, errors } = await start({
      certs: async () => {
        throw new Error('secret detail /etc/tessera/key.pem');
      },
      config: () => {
        throw new Error('another secret');
      },
      readiness: () => {
        throw new Error('x');
      },
    });
    for (const path of ['/certs', '/config', '/ready']) {
      const r = await request(server, 'GET', path);
      expect(r.status).toBe(500);
      expect(JSON.parse(r.body)).toEqual({ error: 'internal' });
    }
    expect(errors).toEqual(['/certs', '/config', '/ready']);
  });

  test('headers over 16 KiB are refused with 431', async () => {
    const { server } = await start();
    const r = await request(server, 'GET', '/healthz', { 'x-big': 'a'.repeat(17 * 1024) });
    expect(r.status).toBe(431);
    const ok = await request(server, 'GET', '/healthz', { 'x-fits': 'a'.repeat(8 * 1024) });
    expect(ok.status).toBe(200);
  });

  test('a client that never finishes its headers is cut off (408) after headersTimeout', async () => {
    const { server } = await start({ limits: { headersTimeoutMs: 200, requestTimeoutMs: 400, timeoutCheckIntervalMs: 50 } });
    const s = net.connect(server.address.port, '127.0.0.1');
    s.write('GET /healthz HTTP/1.1\r\nhost: x\r\n');
    let data = '';
    s.on('data', (c) => {
      data += c.toString();
    });
    const t0 = Date.now();
    await once(s, 'close');
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(data).toMatch(/^HTTP\/1\.1 408/);
  });

  test('clients that never read nor close cannot starve /ready: at the cap the oldest idle one makes room, and each is let go once its 408 is written', async () => {
    const refused: string[] = [];
    const { server } = await start({ limits: { headersTimeoutMs: 1_500, requestTimeoutMs: 2_000, timeoutCheckIntervalMs: 50, maxConnections: 3, idleTimeoutMs: 60_000 }, onRefused: (r) => refused.push(r) });
    const port = server.address.port;
    // Three slots taken by clients that send one byte, then never read (so never see the server's FIN) nor close.
    const stalled = await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise<{ socket: net.Socket; closed: Promise<unknown> }>((resolve) => {
            const s = net.connect(port, '127.0.0.1', () => {
              s.pause();
              s.write('G');
              resolve({ socket: s, closed: new Promise((r) => s.on('close', r)) });
            });
            s.on('error', () => {});
          }),
      ),
    );
    try {
      // A probe at once, before any deadline: the oldest stalled connection makes room.
      expect((await request(server, 'GET', '/ready', { host: '127.0.0.1' })).status).toBe(200);
      expect(refused).toContain('too_many_connections');
      // The others are cut at their headers deadline (408, then destroyed, not left in FIN-WAIT-2): once they read
      // again, each sees its end.
      for (let i = 0; i < 100 && refused.filter((r) => r === 'headers_timeout').length < 2; i++) await new Promise((r) => setTimeout(r, 100));
      expect(refused.filter((r) => r === 'headers_timeout').length).toBeGreaterThanOrEqual(2);
      for (const x of stalled) x.socket.resume();
      await Promise.race([Promise.all(stalled.map((x) => x.closed)), new Promise((_, reject) => setTimeout(() => reject(new Error('stalled clients still held')), 10_000))]);
    } finally {
      for (const x of stalled) x.socket.destroy();
    }
  });

  test('slots held busy by requests that hang (an /app-health probe of a hung app) make room past a grace: /ready still answers', async () => {
    // An app that accepts and never answers (each probe a connection of its own: counted).
    let probing = 0;
    const hung = net.createServer(() => {
      probing++;
    });
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    const time = new FakeTime();
    const refused: string[] = [];
    try {
      const probe = { port: (hung.address() as net.AddressInfo).port, tcp: false, path: '/', scheme: 'HTTP' as const, timeoutMs: 60_000, headers: {} };
      const { server } = await start({ clock: time, limits: { maxConnections: 3 }, appProbes: { 'web/readiness': probe }, onRefused: (r) => refused.push(r) });
      const port = server.address.port;
      const fillers = [0, 1, 2].map(() => {
        const s = net.connect(port, '127.0.0.1', () => s.write('GET /app-health/web/readiness HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n'));
        s.on('error', () => {});
        return s;
      });
      try {
        // The fillers' requests are in (each probe is at the hung app): a fixed wait could end, on a loaded machine,
        // before they were read, and idle connections would make room for the newcomer.
        await until('the three probes at the hung app', () => probing === 3, 5_000, 10);
        // Within the grace the busy fillers keep their slots: the newcomer is closed.
        expect(await request(server, 'GET', '/ready', { host: '127.0.0.1' }).then((r) => r.status, () => 0)).toBe(0);
        // Past it, the oldest busy one makes room.
        time.set(time.nowMs() + 3_000);
        expect((await request(server, 'GET', '/ready', { host: '127.0.0.1' })).status).toBe(200);
        expect(refused).toContain('too_many_connections');
      } finally {
        for (const s of fillers) s.destroy();
      }
    } finally {
      hung.close();
    }
  });

  test('a client that pipelines requests without reading is cut: answers are not built for it by the thousand', async () => {
    const refused: string[] = [];
    const { server } = await start({ onRefused: (r) => refused.push(r) });
    const s = net.connect(server.address.port, '127.0.0.1');
    s.on('error', () => {});
    s.pause();
    s.write('GET /metrics HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n'.repeat(2_000));
    // Cut by the server at the second request; the client, reading again, sees the end.
    await new Promise((r) => setTimeout(r, 200));
    s.resume();
    await new Promise((r) => s.on('close', r)); // a reset is the end too
    expect(refused).toContain('bad_request');
    expect((await request(server, 'GET', '/healthz', { host: '127.0.0.1' })).status).toBe(200);
  });

  test('a URL\'s user:password is not shown by /config', async () => {
    const { server } = await start({ config: () => ({ telemetry: { tracing: { otlpEndpoint: 'https://user:s3cret@otel.example:4318/v1/traces' } }, plain: 'https://otel.example/v1' }) });
    const body = (await request(server, 'GET', '/config')).body;
    expect(body).not.toContain('s3cret');
    expect(JSON.parse(body)).toEqual({ telemetry: { tracing: { otlpEndpoint: 'https://<redacted>@otel.example:4318/v1/traces' } }, plain: 'https://otel.example/v1' });
  });

  test('garbage gets 400 and the connection is closed', async () => {
    const { server } = await start();
    const s = net.connect(server.address.port, '127.0.0.1');
    s.write('NOT HTTP AT ALL\r\n\r\n');
    let data = '';
    s.on('data', (c) => {
      data += c.toString();
    });
    await once(s, 'close');
    expect(data).toMatch(/^HTTP\/1\.1 400/);
  });

  test('close() ends keep-alive connections and frees the port', async () => {
    const { server } = await start();
    const agent = new http.Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: server.address.port, path: '/healthz', agent }, (res) => {
        res.resume();
        res.on('end', resolve);
      }).on('error', reject);
    });
    const t0 = Date.now();
    await server.close();
    expect(Date.now() - t0).toBeLessThan(1_000);
    agent.destroy();
    const again = await startAdminServer({
      listen: { host: '127.0.0.1', port: server.address.port },
      registry: createProxyRegistry(),
      readiness: () => ({ ready: true }),
      certs: () => ({}),
      config: () => ({}),
      timers: realTimers,
    });
    servers.push(again);
    expect(again.address.port).toBe(server.address.port);
  });

  test('a busy port fails with a stable code', async () => {
    const { server } = await start();
    let err: unknown;
    try {
      await start({ listen: { host: '127.0.0.1', port: server.address.port } });
    } catch (e) {
      err = e;
    }
    expect(isTesseraError(err, 'TESSERA_ERR_ADMIN_LISTEN_FAILED')).toBe(true);
    expect((err as Error).message).toContain('EADDRINUSE');
  });
});
