// The outbound listener's plaintext app clients (SessionOptions.plainTcpClient), on a real listener on loopback
// that answers 503 not_ready (no identity yet): a client that asks to close gets its answer and the FIN, and the
// proxy lets go of the connection without waiting for the client's own FIN; a keep-alive client keeps its
// connection; bytes after a closing request make the close graceful (held until the client closes, no reset).
import * as net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { OutboundListener } from '../../../../proxy/src/listeners/outbound-listener.js';
import { listenerDeps, outboundConfig } from '../../../helpers/listener-deps.js';
import { until } from '../../../helpers/until.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function started(): Promise<{ l: OutboundListener; port: number }> {
  const l = new OutboundListener(outboundConfig().outbound[0]!, listenerDeps());
  cleanups.push(() => l.close());
  const { port } = await l.start();
  return { l, port };
}

/** A client that never ends its side by itself and records what it gets. */
async function client(port: number) {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  let text = '';
  let ended = false;
  let error: string | undefined;
  socket.on('data', (d: Buffer) => {
    text += d.toString('latin1');
  });
  socket.on('end', () => {
    ended = true;
  });
  socket.on('error', (e: NodeJS.ErrnoException) => {
    error = e.code;
  });
  cleanups.push(() => socket.destroy());
  await new Promise<void>((r) => socket.once('connect', () => r()));
  return { socket, text: () => text, ended: () => ended, error: () => error };
}

const GET = (path: string, close: boolean) => `GET ${path} HTTP/1.1\r\nHost: api\r\n${close ? 'Connection: close\r\n' : ''}\r\n`;
const answers = (text: string) => (text.match(/HTTP\/1\.1 503 /g) ?? []).length;

describe('outbound listener, plaintext app clients', () => {
  test('a client that asks to close gets its answer and the FIN, and the proxy lets go before the client closes its side', async () => {
    const { l, port } = await started();
    const c = await client(port);
    await until('counted', () => l.openConnections === 1, 5_000, 10);
    c.socket.write(GET('/', true));
    await until('the answer and the FIN', () => c.ended(), 5_000, 10);
    expect(answers(c.text())).toBe(1);
    expect(c.text()).toContain('connection: close\r\n');
    // The client has not ended its side: the proxy closed the connection all the same.
    expect(c.socket.writableEnded).toBe(false);
    await until('the proxy let go', () => l.openConnections === 0, 5_000, 10);
    expect(c.error()).toBeUndefined();
  });

  test('a keep-alive client keeps its connection for the next request', async () => {
    const { l, port } = await started();
    const c = await client(port);
    c.socket.write(GET('/one', false));
    await until('the first answer', () => answers(c.text()) === 1, 5_000, 10);
    c.socket.write(GET('/two', false));
    await until('the second answer on the same connection', () => answers(c.text()) === 2, 5_000, 10);
    expect(c.ended()).toBe(false);
    expect(l.openConnections).toBe(1);
  });

  test('bytes after a closing request: the close is graceful, held until the client closes its side, with no reset', async () => {
    const { l, port } = await started();
    const c = await client(port);
    c.socket.write(GET('/last', true) + GET('/after', false));
    await until('the answer and the FIN', () => c.ended(), 5_000, 10);
    expect(answers(c.text())).toBe(1);
    // Half-closed by the proxy, which waits for the client's FIN (it reads and drops what the client still sends).
    expect(l.openConnections).toBe(1);
    c.socket.write('more bytes nobody will answer');
    c.socket.end();
    await until('closed once the client closed too', () => l.openConnections === 0, 5_000, 10);
    expect(c.error()).toBeUndefined();
  });
});
