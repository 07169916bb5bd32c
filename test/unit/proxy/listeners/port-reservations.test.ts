// The listeners' ports bound before the proxy attests (audit 52a F3), with real sockets on loopback: a port in use
// fails the whole reservation as TESSERA_ERR_PROXY_LISTEN_FAILED saying no token was spent, and releases what it
// bound; a held port is really held (no one else binds it), resets every connection while held (fail closed: not
// one byte is answered), and the listener that takes it over serves on the same port, a port 0 pick included. For
// listener workers (`reusePort`, audit 53b F1) a port any socket listens on fails too, one with SO_REUSEPORT (whose
// group the reservation would otherwise join) included, while the workers' own reuseport binds still join it.
import * as net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { ListenerGroup } from '../../../../proxy/src/listeners/listener-group.js';
import { OutboundListener } from '../../../../proxy/src/listeners/outbound-listener.js';
import { PortReservations } from '../../../../proxy/src/listeners/port-reservations.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { listenerDeps as deps, outboundConfig as config } from '../../../helpers/listener-deps.js';

const servers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => (s.listening ? s.close(() => r()) : r()))));
});

async function listening(port = 0, opts: { host?: string; reusePort?: boolean } = {}): Promise<net.Server> {
  const s = net.createServer();
  servers.push(s);
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen({ port, host: opts.host ?? '127.0.0.1', ...(opts.reusePort ? { reusePort: true } : {}) }, () => resolve());
  });
  return s;
}

/** What PortReservations.bind threw (an Error saying "bound" when it did not). */
async function bindFailure(...args: Parameters<typeof PortReservations.bind>): Promise<Error & { code?: string }> {
  return PortReservations.bind(...args).then(
    async (r) => {
      await r.close();
      return new Error('bound');
    },
    (e: unknown) => e as Error,
  );
}

/** Connects, sends a request and reports what came back: an answer's head, or the error that ended the connection. */
function exchange(port: number): Promise<{ bytes: string; error?: string }> {
  return new Promise((resolve) => {
    let bytes = '';
    const c = net.connect({ host: '127.0.0.1', port }, () => c.write('GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n'));
    c.on('data', (d: Buffer) => {
      bytes += d.toString('latin1');
      if (bytes.includes('\r\n\r\n')) c.destroy();
    });
    c.on('error', (e: NodeJS.ErrnoException) => resolve({ bytes, error: e.code ?? e.message }));
    c.on('close', () => resolve({ bytes }));
  });
}

describe('PortReservations', () => {
  test('a port in use: TESSERA_ERR_PROXY_LISTEN_FAILED saying no token was spent, and the ports bound before are let go', async () => {
    const blocker = await listening();
    const busy = (blocker.address() as net.AddressInfo).port;
    const free = (await listening()).address() as net.AddressInfo;
    await new Promise<void>((r) => servers.pop()!.close(() => r()));
    const c = config();
    const twoListeners = { inbound: [], edge: [], outbound: [{ ...c.outbound[0]!, name: 'a', listen: { host: '127.0.0.1', port: free.port } }, { ...c.outbound[0]!, name: 'b', listen: { host: '127.0.0.1', port: busy } }] };
    const err = (await PortReservations.bind(twoListeners).then(
      () => new Error('bound'),
      (e: unknown) => e as Error,
    )) as Error & { code?: string };
    expect(err).toMatchObject({ code: 'TESSERA_ERR_PROXY_LISTEN_FAILED' });
    expect(err.message).toContain(`127.0.0.1:${busy}`);
    expect(err.message).toContain('a join token is not spent');
    // The first one, bound before the failure, is free again.
    await listening(free.port);
  });

  test('held: no one else can bind it, and every connection is reset before a byte is answered', async () => {
    const r = await PortReservations.bind(config());
    const port = r.ports()['outbound/out']!;
    expect(port).toBeGreaterThan(0);
    await expect(listening(port)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect(await exchange(port)).toEqual({ bytes: '', error: 'ECONNRESET' });
    await r.close();
    await listening(port);
  });

  test('the listener takes over the held socket: same port (a port 0 pick), served, never let go in between', async () => {
    const c = config();
    const r = await PortReservations.bind(c);
    const port = r.ports()['outbound/out']!;
    const group = new ListenerGroup(new FakeTime());
    const [started] = await group.start([new OutboundListener(c.outbound[0]!, deps())], r);
    expect(started!.port).toBe(port);
    // Served now: an HTTP answer (the upstream is a closed port: 502), not a reset.
    const got = await exchange(port);
    expect(got.bytes).toMatch(/^HTTP\/1\.1 50[23] /);
    // Nothing left to release; the listener owns the socket and closes it at drain.
    await r.close();
    expect((await exchange(port)).bytes).toMatch(/^HTTP\/1\.1 50[23] /);
    await group.drainAndClose(1_000);
    await listening(port);
  });

  test('reusePort: a port another socket listens on fails, whether that socket set SO_REUSEPORT or not', async () => {
    for (const reusePort of [true, false]) {
      const port = ((await listening(0, { reusePort })).address() as net.AddressInfo).port;
      const err = await bindFailure(config(`127.0.0.1:${port}`), { reusePort: true });
      expect(err, `holder with reusePort ${reusePort}`).toMatchObject({ code: 'TESSERA_ERR_PROXY_LISTEN_FAILED' });
      expect(err.message).toContain(`a listener port is already in use: outbound "out" (listen 127.0.0.1:${port}) listen EADDRINUSE: address already in use 127.0.0.1:${port}`);
      expect(err.message).toContain('a join token is not spent');
    }
  });

  test('reusePort: held (a port 0 pick, a host name), the workers join it with SO_REUSEPORT and no one else binds it', async () => {
    for (const host of ['127.0.0.1', 'localhost']) {
      const r = await PortReservations.bind(config(`${host}:0`), { reusePort: true });
      const port = r.ports()['outbound/out']!;
      expect(port).toBeGreaterThan(0);
      await expect(listening(port, { host })).rejects.toMatchObject({ code: 'EADDRINUSE' });
      // A worker's bind, as worker-config.ts gives it: joins the reservation's group.
      const worker = await listening(port, { host, reusePort: true });
      await r.close();
      await new Promise<void>((done) => worker.close(() => done()));
      await listening(port, { host });
    }
  });
});
