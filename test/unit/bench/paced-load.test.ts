// The paced (open-loop) generator against real local servers: every request due in the window is sent and
// answered, on every connection in turn; statuses are counted apart; latency runs from when a request was due (a
// server that answers late shows it); a server that drops its connections turns what was due on them into failures.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { runPacedLoad } from '../../../bench/harness/paced-load.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ port: number; sockets: Set<unknown>; server: Server }> {
  const server = createServer(handler);
  const sockets = new Set<unknown>();
  server.on('connection', (s) => sockets.add(s));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, sockets, server };
}

describe('runPacedLoad', () => {
  test('rate × duration requests, over every connection, all answered; 2xx and others counted apart', async () => {
    let seen = 0;
    const { port, sockets } = await serve((req, res) => {
      seen++;
      res.statusCode = req.url === '/' && seen % 10 === 0 ? 503 : 200;
      res.end('ok');
    });
    const r = await runPacedLoad({ host: '127.0.0.1', port, connections: 4, rateRps: 200, durationMs: 1_000 });
    expect(seen).toBe(200);
    expect(r.responses).toBe(200);
    expect(r.non2xx).toBe(20);
    expect(r.ok2xx).toBe(180);
    expect(r.errors).toBe(0);
    expect(sockets.size).toBe(4);
    expect(r.latency.count).toBe(180);
  });

  test('latency is counted from when a request was due: a server 50 ms late shows at least 50 ms', async () => {
    const { port } = await serve((_req, res) => setTimeout(() => res.end('late'), 50));
    const r = await runPacedLoad({ host: '127.0.0.1', port, connections: 2, rateRps: 40, durationMs: 500 });
    expect(r.ok2xx).toBe(20);
    expect(r.latency.minMs).toBeGreaterThanOrEqual(49);
  });

  test('a server that drops its connections: what was due on them counts as failures, with the reason', async () => {
    let n = 0;
    const { port } = await serve((req, res) => {
      if (++n === 3) {
        req.socket.destroy();
        return;
      }
      res.end('ok');
    });
    const r = await runPacedLoad({ host: '127.0.0.1', port, connections: 2, rateRps: 100, durationMs: 300, drainMs: 500 });
    expect(r.errors).toBeGreaterThan(0);
    expect(r.ok2xx + r.errors).toBe(30);
    expect(r.errorSamples.join(' ')).toMatch(/closed|reset|ECONNRESET|EPIPE/);
  });

  test('an answer without Content-Length is a failure, not a guess', async () => {
    const { port } = await serve((_req, res) => {
      res.write('chunked');
      res.end();
    });
    const r = await runPacedLoad({ host: '127.0.0.1', port, connections: 1, rateRps: 20, durationMs: 200, drainMs: 300 });
    expect(r.ok2xx).toBe(0);
    expect(r.errors).toBe(4);
    expect(r.errorSamples[0]).toMatch(/unexpected response head: HTTP\/1\.1 200/);
  });
});
