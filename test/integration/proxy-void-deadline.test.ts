// Callers that give up before the app answers (audit 9b F2). The inbound sidecar reads a pending answer "into the
// void" so its pooled connection to the app survives; that read must keep the exchange's deadlines. It did not:
// the sweep forgets a session once its client's socket closes, so an app path that never answered kept every such
// connection for ever, and once `upstreamPoolSize` callers had given up the endpoint hung for every caller.
// Real proxy process, real mTLS callers, a raw app that never answers /hang.
import { mkdir, writeFile } from 'node:fs/promises';
import { type AddressInfo, type Server, type Socket, createServer } from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { allowPolicy } from '../helpers/sidecar-pair.js';
import { type ProxyProcess, startProxyProcess, writeSvidFiles, tlsOptionsOf } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;

let cleanup: () => Promise<void>;
let app: Server;
let api: ProxyProcess;
let web: { cert: string; key: string; ca: string };
/** The app's connections still open, and how many of them hold an unanswered /hang. */
const open = new Set<Socket>();
const hanging = new Set<Socket>();

beforeAll(async () => {
  const tmp = await makeTempDir();
  cleanup = tmp.cleanup;
  const dir = tmp.dir;
  const ca = await TestCa.create({ trustDomain: TD });
  await writeSvidFiles(ca, API, join(dir, 'api'));
  const w = await writeSvidFiles(ca, WEB, join(dir, 'web'));
  web = await tlsOptionsOf(w);
  await mkdir(join(dir, 'policies'));
  await writeFile(join(dir, 'policies', 'allow.yaml'), allowPolicy(API, WEB));
  app = createServer((s) => {
    open.add(s);
    s.on('close', () => {
      open.delete(s);
      hanging.delete(s);
    });
    s.on('error', () => undefined);
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        if (head.startsWith('GET /hang')) hanging.add(s);
        else if (head.startsWith('GET /trickle')) {
          // The head at once, then its 100-byte body a byte every 300 ms: never idle, never done.
          hanging.add(s);
          s.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n');
          const t = setInterval(() => (s.destroyed ? clearInterval(t) : s.write('x')), 300);
          s.on('close', () => clearInterval(t));
        } else s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      }
    });
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appPort = (app.address() as AddressInfo).port;
  await writeFile(
    join(dir, 'api.yaml'),
    [
      'identity:',
      '  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }',
      'inbound:',
      `  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort} }`,
      'authorization: { policiesDir: policies }',
      'limits: { requestTimeout: 1s, streamIdleTimeout: 30s, upstreamPoolSize: 2 }',
      'admin: { listen: 127.0.0.1:0 }',
      'telemetry: { accessLog: off }',
      '',
    ].join('\n'),
  );
  api = await startProxyProcess(join(dir, 'api.yaml'));
}, 30_000);

afterAll(async () => {
  await api?.stop();
  for (const s of open) s.destroy();
  app?.close();
  await cleanup?.();
});

/** One request over mTLS as web; resolves with the status line, or '' if the connection ended without one. */
function request(path: string, giveUpAfterMs?: number): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port: api.ports.get('inbound/app')!, cert: web.cert, key: web.key, ca: web.ca, checkServerIdentity: () => undefined });
    let got = '';
    s.on('secureConnect', () => {
      s.write(`GET ${path} HTTP/1.1\r\nHost: api\r\n\r\n`);
      if (giveUpAfterMs !== undefined) setTimeout(() => s.destroy(), giveUpAfterMs);
    });
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes('\r\n')) s.destroy();
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve(got.split('\r\n')[0] ?? ''));
  });
}

describe('callers that leave before the app answers', () => {
  test('as many as the pool holds: their app connections are let go at requestTimeout, and the next caller is served', async () => {
    expect(await request('/ok')).toBe('HTTP/1.1 200 OK');
    await Promise.all([request('/hang', 200), request('/hang', 200)]);
    expect(hanging.size).toBe(2); // the pool is full of answers nobody is waiting for
    await until('the app connections given up at requestTimeout', () => hanging.size === 0, 10_000, 50);
    expect(await request('/ok')).toBe('HTTP/1.1 200 OK');
  }, 30_000);

  test('an answer trickled after the head, its caller gone: read into the void for requestTimeout at most, not the stream idle timeout per byte', async () => {
    await Promise.all([request('/trickle', 300), request('/trickle', 300)]);
    const left = Date.now();
    await until('the trickling app connections given up', () => hanging.size === 0, 15_000, 50);
    expect(Date.now() - left).toBeLessThan(10_000); // streamIdleTimeout is 30 s and the body never pauses that long
    expect(await request('/ok')).toBe('HTTP/1.1 200 OK');
  }, 30_000);
});
