// The lifecycle every sidecar listener shares (ServedListener), on a real outbound listener on loopback: open
// connections counted (openConnections and tessera_connections_active) until they close, connections past
// limits.maxConnections dropped and counted, drain stops accepting and closes idle connections.
import * as net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { OutboundListener } from '../../../../proxy/src/listeners/outbound-listener.js';
import { listenerDeps, outboundConfig } from '../../../helpers/listener-deps.js';
import { sumSeries } from '../../../helpers/prom-metrics.js';
import { until } from '../../../helpers/until.js';

const connect = (port: number) =>
  new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });

const open: { close(): void }[] = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
});

function listener(limits = '{}') {
  const deps = listenerDeps(outboundConfig('127.0.0.1:0', limits).limits);
  const l = new OutboundListener(outboundConfig().outbound[0]!, deps);
  open.push(l);
  const metric = async (name: string, labels: Record<string, string>) => sumSeries(await deps.metrics.registry.metrics(), name, labels);
  return { l, metric };
}

describe('ServedListener', () => {
  test('a connection is counted while it is open, and idle() resolves once it has closed', async () => {
    const { l, metric } = listener();
    expect(l.port).toBe(0);
    const { port } = await l.start();
    expect(l.port).toBe(port);
    await l.idle(); // none open: at once
    const client = await connect(port);
    await until('the connection is counted', () => l.openConnections === 1);
    expect(await metric('tessera_connections_active', { direction: 'outbound' })).toBe(1);
    const idle = l.idle();
    client.destroy();
    await idle;
    expect(l.openConnections).toBe(0);
    await until('the gauge is back to 0', async () => (await metric('tessera_connections_active', { direction: 'outbound' })) === 0);
  });

  test('connections past limits.maxConnections are dropped and counted as too_many_connections', async () => {
    const { l, metric } = listener('{ maxConnections: 1 }');
    const { port } = await l.start();
    const first = await connect(port);
    open.push({ close: () => first.destroy() });
    await until('the first connection is counted', () => l.openConnections === 1);
    const second = await connect(port);
    await new Promise<void>((resolve) => second.once('close', () => resolve()));
    expect(await metric('tessera_requests_rejected_total', { direction: 'outbound', reason: 'too_many_connections' })).toBe(1);
    expect(l.openConnections).toBe(1);
  });

  test('drain stops accepting and closes an idle connection at once (a busy one would finish its exchange first)', async () => {
    const { l } = listener();
    const { port } = await l.start();
    const client = await connect(port);
    await until('the connection is counted', () => l.openConnections === 1);
    const closedByProxy = new Promise<void>((resolve) => client.once('close', () => resolve()));
    l.drain();
    await expect(connect(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await closedByProxy;
    await l.idle();
  });
});
