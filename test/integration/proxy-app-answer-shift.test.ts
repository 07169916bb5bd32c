// An app that sends an unsolicited HTTP/1.1 response while its pooled connection carries the next request shifts
// that connection's answers by one (docs/security.md, Known limits). With `limits.upstreamMaxRequests: 1` the
// inbound sidecar opens a connection per exchange, so after the same trigger every caller still reads its own
// answer; the default reuses connections (fewer app connections than exchanges).
import * as https from 'node:https';
import * as net from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, writeSvidFiles, tlsOptionsOf } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;

let dir: string;
let cleanup: () => Promise<void>;
let app: net.Server;
let appPort: number;
let appConnections = 0;
let client: { cert: string; key: string; ca: string };
const proxies: ProxyProcess[] = [];

/** Answers each request with its own path; `/late-extra` also gets a second, unasked response 30 ms later. */
function startApp(): Promise<void> {
  app = net.createServer((s) => {
    appConnections++;
    s.on('error', () => undefined);
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        const path = buf.slice(0, end).split(' ')[1] ?? '?';
        buf = buf.slice(end + 4);
        const answer = (body: string) => `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
        s.write(answer(path));
        if (path === '/late-extra') setTimeout(() => s.writable && s.write(answer('/nobody-asked')), 30);
      }
    });
  });
  return new Promise((r) =>
    app.listen(0, '127.0.0.1', () => {
      appPort = (app.address() as net.AddressInfo).port;
      r();
    }),
  );
}

async function startInbound(name: string, limits: string): Promise<number> {
  const cfg = join(dir, `${name}.yaml`);
  await writeFile(
    cfg,
    `identity:\n  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\nauthorization: { defaultAction: allow }\n${limits}inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort}, protocol: http }\n`,
  );
  const p = await startProxyProcess(cfg);
  proxies.push(p);
  return p.ports.get('inbound/app')!;
}

/** `callers` keep-alive callers, each sending `rounds` requests one after another; the answers that were not theirs. */
async function run(port: number, callers: number, rounds: number): Promise<string[]> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: callers, ...client, rejectUnauthorized: false });
  const get = (path: string) =>
    new Promise<string>((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port, path, agent }, (res) => {
        let body = '';
        res.setEncoding('latin1');
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve(body));
      });
      req.on('error', reject);
      req.end();
    });
  const wrong: string[] = [];
  await get('/late-extra');
  await Promise.all(
    Array.from({ length: callers }, async (_, c) => {
      for (let i = 0; i < rounds; i++) {
        const path = `/c${c}/r${i}`;
        const body = await get(path);
        if (body !== path) wrong.push(`${path} read ${body}`);
      }
    }),
  );
  agent.destroy();
  return wrong;
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const ca = await TestCa.create({ trustDomain: TD });
  await writeSvidFiles(ca, API, join(dir, 'api'));
  const w = await writeSvidFiles(ca, WEB, join(dir, 'web'));
  client = await tlsOptionsOf(w);
  await startApp();
}, 30_000);

afterAll(async () => {
  for (const p of proxies) await p.stop();
  app?.close();
  await cleanup?.();
});

describe('an app that answers a request twice', () => {
  test('with limits.upstreamMaxRequests: 1 every caller reads its own answer, each exchange on a connection of its own', async () => {
    const port = await startInbound('one', 'limits: { upstreamMaxRequests: 1 }\n');
    const before = appConnections;
    const wrong = await run(port, 4, 40);
    expect(wrong).toEqual([]);
    expect(appConnections - before).toBeGreaterThanOrEqual(161);
  }, 60_000);

  test('by default the pooled connections are reused (the bound is 1,000 exchanges)', async () => {
    const port = await startInbound('default', '');
    const before = appConnections;
    // The same run shifts answers here (44 to 60 of the 160 read another caller's, three runs): the known limit.
    await run(port, 4, 40);
    expect(appConnections - before).toBeLessThan(100);
  }, 60_000);
});
