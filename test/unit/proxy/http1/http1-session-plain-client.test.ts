// A plaintext TCP client of an Http1Session (SessionOptions.plainTcpClient, the outbound listener's app clients),
// on loopback with a real pool and app: after the forwarded answer to a client that asked to close, the proxy has
// closed its socket, not only half-closed it (what the client sends after it is refused with a reset); a
// keep-alive exchange leaves the connection open. TCP_NODELAY is set only before a second write or a first one
// larger than one segment (Http1Downstream, on a real socket whose setNoDelay calls are recorded, then made).
import * as net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { Http1Downstream } from '../../../../proxy/src/http1/http1-downstream.js';
import { type Cleanup, client, http1Harness, listenLoopback, rawApp } from '../../../helpers/http1-session-harness.js';
import { until } from '../../../helpers/until.js';

const cleanups: Cleanup[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const ok = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok';

async function okApp() {
  return rawApp(cleanups, (s) => s.on('data', () => s.write(ok)));
}

describe('Http1Session with a plaintext TCP client', () => {
  test('the answer to a client that asked to close is followed by a real close: later bytes are refused with a reset', async () => {
    const app = await okApp();
    const p = await http1Harness(app.port, cleanups, { plainTcpClient: true });
    const c = await client(p.port, cleanups);
    let error: string | undefined;
    c.socket.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code;
    });
    c.socket.write('GET / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n');
    await until('the answer and the FIN', () => c.ended(), 5_000, 10);
    expect(c.text()).toContain('HTTP/1.1 200 OK');
    expect(c.text().endsWith('ok')).toBe(true);
    expect(p.records.map((r) => r.status)).toEqual([200]);
    // A client that keeps sending after its own Connection: close meets a closed socket (nginx does the same).
    await until('a reset', () => {
      if (!c.socket.destroyed) c.socket.write('x');
      return error !== undefined;
    }, 5_000, 20);
    expect(['ECONNRESET', 'EPIPE']).toContain(error);
    expect(app.sockets.length).toBe(1);
  });

  test('a keep-alive exchange leaves the connection open for the next one', async () => {
    const app = await okApp();
    const p = await http1Harness(app.port, cleanups, { plainTcpClient: true });
    const c = await client(p.port, cleanups);
    c.socket.write('GET /1 HTTP/1.1\r\nHost: app\r\n\r\n');
    await until('the first answer', () => c.text().endsWith('ok'), 5_000, 10);
    c.socket.write('GET /2 HTTP/1.1\r\nHost: app\r\n\r\n');
    await until('the second answer', () => (c.text().match(/200 OK/g) ?? []).length === 2, 5_000, 10);
    expect(c.ended()).toBe(false);
    expect(p.sessions[0]!.closed).toBe(false);
  });
});

describe('Http1Downstream, TCP_NODELAY', () => {
  /** The accepted end of a loopback connection, its setNoDelay calls recorded before they are made. */
  async function accepted(): Promise<{ socket: net.Socket; calls: boolean[] }> {
    let accept: (s: net.Socket) => void = () => undefined;
    const got = new Promise<net.Socket>((r) => {
      accept = r;
    });
    const server = net.createServer((s) => accept(s));
    const port = await listenLoopback(server, cleanups);
    const peer = net.connect({ port, host: '127.0.0.1' });
    peer.on('data', () => undefined);
    cleanups.push(() => peer.destroy());
    const socket = await got;
    cleanups.push(() => socket.destroy());
    const calls: boolean[] = [];
    const real = socket.setNoDelay.bind(socket);
    socket.setNoDelay = (noDelay?: boolean) => {
      calls.push(noDelay ?? true);
      return real(noDelay);
    };
    return { socket, calls };
  }

  test('plaintext client: not before a small first write; before the second; once', async () => {
    const { socket, calls } = await accepted();
    const d = new Http1Downstream(socket, undefined, true);
    d.write(Buffer.from(ok));
    expect(calls).toEqual([]);
    d.write(Buffer.from(ok));
    expect(calls).toEqual([true]);
    d.write(Buffer.from(ok));
    expect(calls).toEqual([true]);
  });

  test('plaintext client: before a first write larger than one segment', async () => {
    const { socket, calls } = await accepted();
    const d = new Http1Downstream(socket, undefined, true);
    d.write(Buffer.alloc(4_096, 'a'));
    expect(calls).toEqual([true]);
  });

  test('other clients: never (their listener sets it when it accepts)', async () => {
    const { socket, calls } = await accepted();
    const d = new Http1Downstream(socket, undefined);
    d.write(Buffer.from(ok));
    d.write(Buffer.from(ok));
    expect(calls).toEqual([]);
  });
});
