// AcceptTimes on a real TLS server over loopback: the handshake is timed from TCP accept to secure, once per
// connection; entries of connections that never became secure go when they close (nothing accumulates).
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { AcceptTimes } from '../../../../proxy/src/telemetry/accept-times.js';
import { TestCa } from '../../../helpers/test-ca.js';
import { until } from '../../../helpers/until.js';

let server: tls.Server;
let accepts: AcceptTimes;
let port: number;
const clock = 1_000;
const seen: (number | undefined)[] = [];

beforeAll(async () => {
  const ca = await TestCa.create({ trustDomain: 'example.org' });
  const svid = await ca.mintSvid('spiffe://example.org/server');
  server = tls.createServer({ cert: svid.chainPem, key: svid.keyPem });
  accepts = new AcceptTimes(server, () => clock);
  server.on('secureConnection', (s) => {
    seen.push(accepts.secondsSince(s, clock + 250));
    seen.push(accepts.secondsSince(s, clock + 500)); // taken once
    s.end();
  });
  server.on('tlsClientError', (_e, s) => s.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

test('a handshake is timed from accept, once', async () => {
  const c = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
  c.on('error', () => undefined);
  await until('secure', async () => seen.length === 2, 5_000);
  c.destroy();
  expect(seen).toEqual([0.25, undefined]);
  await until('entry gone', async () => accepts.size === 0, 5_000);
});

test('connections that never finish a handshake leave nothing behind', async () => {
  const plain = net.connect(port, '127.0.0.1');
  await new Promise((r) => plain.once('connect', r));
  await until('accepted', async () => accepts.size === 1, 5_000);
  plain.end('GET / HTTP/1.1\r\n\r\n');
  await until('entry gone after close', async () => accepts.size === 0, 5_000);
});
