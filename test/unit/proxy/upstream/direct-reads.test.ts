// Pooled upstream connections read through directReads() (Node's onread, no Readable machinery): every chunk a
// listener keeps stays intact however many reads follow (no read buffer is shared), pause stops the reads, and
// bytes before the pool's listener is attached end the connection. Real loopback sockets, plaintext and mTLS.
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { plainConnector } from '../../../../proxy/src/upstream/connectors.js';
import { until } from '../../../helpers/until.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A server that runs `serve` on each connection; closed after the test. */
async function server(serve: (s: net.Socket) => void): Promise<number> {
  const sockets: net.Socket[] = [];
  const srv = net.createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
    serve(s);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  );
  return (srv.address() as net.AddressInfo).port;
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) =>
    plainConnector(
      '127.0.0.1',
      port,
      2_000,
    )((err, socket) => {
      if (err || !socket) return reject(err);
      cleanups.push(() => void socket.destroy());
      resolve(socket as net.Socket);
    }),
  );
}

describe('directReads on pooled upstream connections', () => {
  test('chunks kept by the listener stay intact across many small and large reads', async () => {
    // Writes of 1 B to 40 KB, each after the previous one left: small reads (copied out) and large ones (which
    // keep their buffer) interleave. A shared read buffer would overwrite the kept chunks.
    const sizes = [1, 7, 100, 3000, 5000, 40_000, 2, 16_384, 4095, 4096, 900, 30_000, 12, 1];
    const parts = sizes.map((n) => randomBytes(n));
    const port = await server((s) => {
      let i = 0;
      const next = (): void => {
        if (i === parts.length) return void s.end();
        s.write(parts[i++]!, () => setTimeout(next, 2));
      };
      next();
    });
    const socket = await connect(port);
    const kept: Buffer[] = [];
    socket.on('data', (c: Buffer) => kept.push(c));
    await new Promise<void>((r) => socket.once('end', () => r()));
    expect(kept.length).toBeGreaterThan(1);
    expect(Buffer.concat(kept).equals(Buffer.concat(parts))).toBe(true);
  });

  test('pause stops the reads, resume brings the rest', async () => {
    const body = randomBytes(256 * 1024);
    let serverSocket: net.Socket | undefined;
    const port = await server((s) => {
      serverSocket = s;
      s.write(body.subarray(0, 1000));
    });
    const socket = await connect(port);
    const kept: Buffer[] = [];
    socket.on('data', (c: Buffer) => {
      kept.push(c);
      if (kept.length === 1) socket.pause();
    });
    await until('the first chunk', () => kept.length === 1, 5_000, 5);
    serverSocket!.end(body.subarray(1000));
    await until('the server to have sent everything', () => serverSocket!.writableFinished || serverSocket!.writableLength > 0, 5_000, 5);
    // Paused: nothing more is emitted, however long we wait for the event loop to turn a few times.
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    expect(kept.length).toBe(1);
    const ended = new Promise<void>((r) => socket.once('end', () => r()));
    socket.resume();
    await ended;
    expect(Buffer.concat(kept).equals(body)).toBe(true);
  });

  test('bytes before the pool attached its listener end the connection (an upstream that talks first is broken)', async () => {
    const port = await server((s) => s.write('unsolicited'));
    const socket = await new Promise<net.Socket>((resolve, reject) =>
      plainConnector(
        '127.0.0.1',
        port,
        2_000,
      )((err, s) => (err || !s ? reject(err) : resolve(s as net.Socket))),
    );
    cleanups.push(() => void socket.destroy());
    const errors: Error[] = [];
    socket.on('error', (e) => errors.push(e));
    await until('the connection to be destroyed', () => socket.destroyed, 5_000, 5);
    expect(errors[0]?.message).toMatch(/before the connection was ready/);
  });
});
