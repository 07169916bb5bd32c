// The mesh scenarios' node floor pair (bench/harness/children/node-floor.ts) as two real processes with the bench's
// real PKI in front of a real app: every answer comes back whole to the caller that asked (the stream ids route it),
// sequentially on one keep-alive connection, interleaved over many, and pipelined; the server side refuses a caller
// without a client certificate, so the row measures mTLS like the others.
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, get, type Server } from 'node:http';
import { Agent } from 'node:http';
import { type AddressInfo, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type FloorPair, startFloorPair } from '../../helpers/floor-pair.js';

const script = fileURLToPath(new URL('../../../bench/harness/children/node-floor.ts', import.meta.url));
let dir = '';
let app: Server;
let serverPort = 0;
let entryPort = 0;
let floor: FloorPair | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-node-floor-'));
  // The app answers with the path it was asked for, so a misrouted answer shows.
  app = createServer((req, res) => {
    res.setHeader('content-length', Buffer.byteLength(req.url!));
    res.end(req.url);
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  floor = await startFloorPair(script, dir, (app.address() as AddressInfo).port);
  ({ serverPort, entryPort } = floor);
});

afterAll(async () => {
  await floor?.stop();
  await new Promise<void>((r) => app.close(() => r()));
  await rm(dir, { recursive: true, force: true });
});

function fetchVia(agent: Agent, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port: entryPort, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    }).on('error', reject);
  });
}

test('one keep-alive connection: each answer whole, in order', async () => {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0; i < 20; i++) expect(await fetchVia(agent, `/seq/${i}`)).toEqual({ status: 200, body: `/seq/${i}` });
  agent.destroy();
});

test('many connections at once: every answer reaches the caller that asked', async () => {
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const paths = Array.from({ length: 160 }, (_, i) => `/many/${i}/${'x'.repeat(i % 7)}`);
  const got = await Promise.all(paths.map((p) => fetchVia(agent, p)));
  expect(got.map((g) => g.body)).toEqual(paths);
  expect(new Set(got.map((g) => g.status))).toEqual(new Set([200]));
  agent.destroy();
});

test('pipelined requests on one connection: the answers come back whole and in order', async () => {
  const text = await new Promise<string>((resolve, reject) => {
    const s = netConnect({ host: '127.0.0.1', port: entryPort }, () => s.write(['/p/1', '/p/22', '/p/333'].map((p) => `GET ${p} HTTP/1.1\r\nhost: x\r\n\r\n`).join('')));
    let got = '';
    s.setEncoding('latin1');
    s.on('data', (c: string) => {
      got += c;
      if (got.endsWith('/p/333')) {
        s.destroy();
        resolve(got);
      }
    });
    s.on('error', reject);
  });
  expect(text.split('HTTP/1.1 200 OK').slice(1).map((a) => a.slice(a.indexOf('\r\n\r\n') + 4))).toEqual(['/p/1', '/p/22', '/p/333']);
});

test('the server side requires a client certificate', async () => {
  const outcome = await new Promise<string>((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port: serverPort, rejectUnauthorized: false });
    s.on('secureConnect', () => s.write('x'));
    s.on('error', (e) => resolve(`error: ${e.message}`));
    s.on('close', () => resolve('closed'));
  });
  expect(outcome).toMatch(/^error: .*certificate required/i);
});
