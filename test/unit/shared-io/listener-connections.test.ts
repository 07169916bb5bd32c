// guardListenerConnections on a real node:http server: a client that pipelines is cut at its second request, and
// that cut is one refusal, however many requests it had already sent in the same write (2,000 counted as ~1,500).
import { createServer } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { afterAll, expect, test } from 'vitest';
import { systemClock } from '../../../common/clock.js';
import { guardListenerConnections } from '../../../shared-io/listener-connections.js';

const server = createServer((_req, res) => res.end('x'.repeat(10_000)));
afterAll(() => server.close());

test('2,000 requests pipelined in one write and never read: the connection is cut, counted as one refusal', async () => {
  const refused: string[] = [];
  guardListenerConnections(server, { max: 8, clock: systemClock, onRefused: (reason) => refused.push(reason) });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const s = connect((server.address() as AddressInfo).port, '127.0.0.1');
  s.on('error', () => {});
  s.pause();
  s.write('GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n'.repeat(2_000));
  await new Promise((r) => setTimeout(r, 300));
  s.resume();
  await new Promise((r) => s.on('close', r));
  expect(refused).toEqual(['pipelined']);
});
