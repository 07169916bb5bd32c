// The mesh-h2 scenario's node http2 floor pair (bench/harness/children/node-h2-floor.ts) as two real processes with
// the bench's real PKI in front of a real h2c app: every stream's answer comes back whole to the stream that asked,
// many at once on one session, request bodies reach the app, and the server side refuses a caller without a client
// certificate, so the row measures mTLS like the others.
import { mkdtemp, rm } from 'node:fs/promises';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type FloorPair, startFloorPair } from '../../helpers/floor-pair.js';

const script = fileURLToPath(new URL('../../../bench/harness/children/node-h2-floor.ts', import.meta.url));
let dir = '';
let app: http2.Http2Server;
let serverPort = 0;
let entryPort = 0;
let floor: FloorPair | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-node-h2-floor-'));
  // The app answers with the method, the path and the body's length, so a misrouted answer shows.
  app = http2.createServer();
  app.on('stream', (stream, headers) => {
    let bytes = 0;
    stream.on('data', (d: Buffer) => {
      bytes += d.length;
    });
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'x-app': 'yes' });
      stream.end(`${headers[':method']} ${headers[':path']} ${bytes}`);
    });
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

function ask(session: http2.ClientHttp2Session, method: string, path: string, body?: Buffer): Promise<{ status: number; app: unknown; text: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': method, ':path': path }, { endStream: !body });
    let status = 0;
    let appHeader: unknown;
    let text = '';
    req.setEncoding('utf8');
    req.on('response', (h) => {
      status = Number(h[':status']);
      appHeader = h['x-app'];
    });
    req.on('data', (c: string) => {
      text += c;
    });
    req.on('end', () => resolve({ status, app: appHeader, text }));
    req.on('error', reject);
    if (body) req.end(body);
  });
}

test('many streams at once on one session: each answer reaches the stream that asked, with its headers', async () => {
  const session = http2.connect(`http://127.0.0.1:${entryPort}`);
  const paths = Array.from({ length: 100 }, (_, i) => `/many/${i}`);
  const got = await Promise.all(paths.map((p) => ask(session, 'GET', p)));
  expect(got.map((g) => g.text)).toEqual(paths.map((p) => `GET ${p} 0`));
  expect(new Set(got.map((g) => `${g.status} ${g.app}`))).toEqual(new Set(['200 yes']));
  session.close();
});

test('a request body reaches the app whole', async () => {
  const session = http2.connect(`http://127.0.0.1:${entryPort}`);
  expect(await ask(session, 'POST', '/upload', Buffer.alloc(200_000, 'u'))).toMatchObject({ status: 200, text: 'POST /upload 200000' });
  session.close();
});

test('the server side requires a client certificate', async () => {
  const outcome = await new Promise<string>((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port: serverPort, rejectUnauthorized: false, ALPNProtocols: ['h2'] });
    s.on('secureConnect', () => s.write('x'));
    s.on('error', (e) => resolve(`error: ${e.message}`));
    s.on('close', () => resolve('closed'));
  });
  expect(outcome).toMatch(/^error: .*certificate required/i);
});
