// ListenerGroup with real listeners on loopback: a drain ends when the last connection closes (told by the
// listener, no polling) or at the drain deadline of the injected timers, whichever comes first; a port in use is
// a coded error and nothing the group started stays open.
import * as net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { ListenerGroup } from '../../../../proxy/src/listeners/listener-group.js';
import { OutboundListener } from '../../../../proxy/src/listeners/outbound-listener.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { listenerDeps as deps, outboundConfig as config } from '../../../helpers/listener-deps.js';
import { until } from '../../../helpers/until.js';

const connect = (port: number) =>
  new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
const closed = (s: net.Socket) => new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));

const sockets: net.Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
});

describe('ListenerGroup', () => {
  test('a drain ends as soon as the last connection closes, before the deadline', async () => {
    const timers = new FakeTime();
    const group = new ListenerGroup(timers);
    const c = config();
    const [started] = await group.start([new OutboundListener(c.outbound[0]!, deps())]);
    expect(started).toMatchObject({ kind: 'outbound', name: 'out' });
    const client = await connect(started!.port);
    sockets.push(client);
    // A request head begun but not finished: the exchange is open, so the drain waits for it.
    client.write('GET / HTTP/1.1\r\nhost: api\r\n');
    await until('the connection is tracked', () => group.describe()[0]!.open === 1);
    let done = false;
    const drained = group.drainAndClose(60_000).then(() => {
      done = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    expect(timers.pending).toBe(1); // the deadline, not fired
    client.destroy();
    await drained;
    expect(timers.pending).toBe(0); // the deadline was cancelled, never fired
  });

  test('at the deadline what is still open is cut', async () => {
    const timers = new FakeTime();
    const group = new ListenerGroup(timers);
    const [started] = await group.start([new OutboundListener(config().outbound[0]!, deps())]);
    const client = await connect(started!.port);
    sockets.push(client);
    client.write('GET / HTTP/1.1\r\nhost: api\r\n');
    await until('the connection is tracked', () => group.describe()[0]!.open === 1);
    const drained = group.drainAndClose(60_000);
    await new Promise((r) => setImmediate(r));
    expect(client.destroyed).toBe(false);
    timers.advance(60_000);
    await drained;
    await closed(client);
  });

  test('a port in use is TESSERA_ERR_PROXY_LISTEN_FAILED and the listeners started before are closed', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const busy = (blocker.address() as net.AddressInfo).port;
    const group = new ListenerGroup(new FakeTime());
    const first = new OutboundListener(config().outbound[0]!, deps());
    const second = new OutboundListener(config(`127.0.0.1:${busy}`).outbound[0]!, deps());
    await expect(group.start([first, second])).rejects.toMatchObject({ code: 'TESSERA_ERR_PROXY_LISTEN_FAILED' });
    await new Promise<void>((r) => blocker.close(() => r()));
    // The first listener's port no longer accepts.
    await expect(connect(first.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
