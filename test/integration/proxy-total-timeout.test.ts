// A listener's total `timeout` on HTTP/1.1, through a real proxy process (audit 19a F1). It was only checked by the
// listener's 1 s sweep: with `timeout: 1s` and an app answering after 1.9 s, about every other request got the late
// 200 at 1.9 s and the 504s came up to 780 ms late. Each request must now get 504 total_timeout at the deadline,
// on new connections and on reused keep-alive ones alike.
import { mkdir, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, writeSvidFiles, tlsOptionsOf } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { allowPolicy } from '../helpers/sidecar-pair.js';
import { TestCa } from '../helpers/test-ca.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
/** The app's delay for /slow: well past the listener's 1 s total, short of the next-but-one sweep. */
const SLOW_MS = 1_900;

let cleanup: () => Promise<void>;
let app: http.Server;
let api: ProxyProcess;
let tlsOpts: { cert: string; key: string; ca: string };

beforeAll(async () => {
  const tmp = await makeTempDir();
  cleanup = tmp.cleanup;
  const dir = tmp.dir;
  const ca = await TestCa.create({ trustDomain: TD });
  await writeSvidFiles(ca, API, join(dir, 'api'));
  const w = await writeSvidFiles(ca, WEB, join(dir, 'web'));
  tlsOpts = await tlsOptionsOf(w);
  await mkdir(join(dir, 'policies'));
  await writeFile(join(dir, 'policies', 'allow.yaml'), allowPolicy(API, WEB));
  app = http.createServer((req, res) => {
    req.resume();
    const answer = () => (res.destroyed ? undefined : res.end('late'));
    if (req.url === '/slow') setTimeout(answer, SLOW_MS);
    else res.end('fast');
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appPort = (app.address() as AddressInfo).port;
  await writeFile(
    join(dir, 'api.yaml'),
    [
      'identity:',
      '  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }',
      'inbound:',
      `  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort}, timeout: 1s }`,
      'authorization: { policiesDir: policies }',
      'admin: { listen: 127.0.0.1:0 }',
      'telemetry: { accessLog: off }',
      '',
    ].join('\n'),
  );
  api = await startProxyProcess(join(dir, 'api.yaml'));
}, 30_000);

afterAll(async () => {
  await api?.stop();
  app?.closeAllConnections();
  app?.close();
  await cleanup?.();
});

interface Outcome {
  readonly status: number;
  readonly error: string | undefined;
  readonly body: string;
  readonly ms: number;
}

function get(path: string, agent: https.Agent | false): Promise<Outcome> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: api.ports.get('inbound/app')!, path, agent, ...tlsOpts, checkServerIdentity: () => undefined }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode!, error: res.headers['x-tessera-error'] as string | undefined, body, ms: performance.now() - start }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Each outcome a 504 total_timeout at the 1 s deadline (not at a sweep up to a second later, never the late 200).
 * The upper bound leaves 400 ms for a loaded machine (1,262 ms seen at load 9); a sweep's answer, anywhere in
 * 1-2 s, still lands above it most of the time, and the test has several outcomes.
 */
function expectAtDeadline(outcomes: Outcome[]): void {
  for (const o of outcomes) {
    expect({ status: o.status, error: o.error, body: o.body.includes('late') }).toEqual({ status: 504, error: 'total_timeout', body: false });
    expect(o.ms).toBeGreaterThanOrEqual(990);
    expect(o.ms).toBeLessThan(1_400);
  }
}

describe("an HTTP/1.1 listener's total timeout against an app that answers after it", () => {
  test('every request, on a new connection or on a reused keep-alive one, gets 504 total_timeout at the deadline', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    const fresh: Outcome[] = [];
    const reused: Outcome[] = [];
    await Promise.all([
      (async () => {
        for (let i = 0; i < 5; i++) fresh.push(await get('/slow', false));
      })(),
      (async () => {
        for (let i = 0; i < 5; i++) {
          // A fast exchange first: the slow one is the next request on the same keep-alive connection.
          expect((await get('/fast', agent)).body).toBe('fast');
          reused.push(await get('/slow', agent));
        }
      })(),
    ]);
    agent.destroy();
    expectAtDeadline(fresh);
    expectAtDeadline(reused);
  }, 40_000);

  test('a request that ends in time is answered as usual', async () => {
    expect(await get('/fast', false)).toMatchObject({ status: 200, body: 'fast' });
  });
});
