// limits.minRequestBodyRate over the multiplexed transport when the peer sidecar stalls (SIGSTOP here; a GC pause or
// a starved CPU does the same): the session's TLS socket backs up, and the outbound proxy pauses its clients (the
// stream's write says wait for 'drain') while their streams still have window. Those clients are held back by the
// proxy, not slow: the pace gives them a new grace, as over a TCP/TLS upstream. They were cut 408
// request_body_timeout, since the stream showed nothing unflushed (audit 62e F1). Real sidecars, a real app, raw
// HTTP/1.1 clients; the pace and grace made short (1 s, 100,000 B/s) so that a 3 s stall is far past them.
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
/** Uploads that fill the session's TLS socket (the kernel's few MB and more) while the peer is stopped. */
const FILLERS = 150;
const LATE = 30;
const BODY = 80 * 1024;

let dir: string;
let cleanup: () => Promise<void>;
let api: ProxyProcess;
let web: ProxyProcess;
let app: Server;
let outbound: number;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  app = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok\n'));
  });
  const appPort = await new Promise<number>((r) => app.listen(0, '127.0.0.1', () => r((app.address() as AddressInfo).port)));
  const ca = await TestCa.create({ trustDomain: TD });
  await writeSvidFiles(ca, API, join(dir, 'api'));
  await writeSvidFiles(ca, WEB, join(dir, 'web'));
  await mkdir(join(dir, 'policies'));
  await writeFile(join(dir, 'policies', 'allow.yaml'), `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: [${WEB}]\n`);
  await writeFile(join(dir, 'api.yaml'), `identity:\n  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }\nauthorization: { policiesDir: policies }\ninbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort} }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\nlimits: { maxConcurrentStreams: 2000 }\n`);
  api = await startProxyProcess(join(dir, 'api.yaml'));
  await writeFile(
    join(dir, 'web.yaml'),
    `identity:\n  files: { certFile: web/svid.pem, keyFile: web/key.pem, bundleFile: web/bundle.pem }\noutbound:\n  - { name: api, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/app')!}, spiffeId: ${API} }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\nlimits: { headersTimeout: 1s, minRequestBodyRate: 100000, upstreamPoolSize: 2000 }\n`,
  );
  web = await startProxyProcess(join(dir, 'web.yaml'));
  outbound = web.ports.get('outbound/api')!;
}, 60_000);

afterAll(async () => {
  api?.child.kill('SIGCONT');
  await web?.stop();
  await api?.stop();
  app?.close();
  await cleanup?.();
});

/** A POST of BODY bytes: whole at once, or (`late`) its head and 1,000 bytes, 20,000 more 100 ms later, the rest at 300 ms. */
function post(late: boolean): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(outbound, '127.0.0.1');
    let text = '';
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1');
    });
    s.on('error', () => resolve(text || 'error'));
    s.on('close', () => resolve(text));
    s.setTimeout(30_000, () => s.destroy());
    const head = `POST /upload HTTP/1.1\r\nHost: api\r\ncontent-length: ${BODY}\r\nconnection: close\r\n\r\n`;
    if (!late) return void s.write(Buffer.concat([Buffer.from(head), Buffer.alloc(BODY, 'x')]));
    s.write(`${head}${'x'.repeat(1_000)}`);
    setTimeout(() => s.write(Buffer.alloc(20_000, 'x')), 100);
    setTimeout(() => s.write(Buffer.alloc(BODY - 21_000, 'x')), 300);
  });
}

const outcome = (answer: string) => `${answer.slice(9, 12)} ${/x-tessera-error: (\S+)/i.exec(answer)?.[1] ?? ''}`.trim();

test('clients the proxy holds back for a backed-up session are not cut as slow senders; a really slow one still is', async () => {
  expect(outcome(await post(false))).toBe('200');
  api.child.kill('SIGSTOP');
  const fillers = Array.from({ length: FILLERS }, () => post(false));
  await new Promise((r) => setTimeout(r, 300));
  // Their streams open on the backed-up session, and write into it after it has filled.
  const late = Array.from({ length: LATE }, () => post(true));
  await new Promise((r) => setTimeout(r, 2_700));
  api.child.kill('SIGCONT');
  const answers = (await Promise.all([...fillers, ...late])).map(outcome);
  expect(answers.filter((a) => a === '408 request_body_timeout')).toEqual([]);
  // The pace itself is on: a client that sends 10 bytes of a 100,000-byte body is cut.
  const slow = await new Promise<string>((resolve) => {
    const s = net.connect(outbound, '127.0.0.1');
    let text = '';
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1');
    });
    s.on('close', () => resolve(text));
    s.on('error', () => resolve(text));
    s.setTimeout(10_000, () => s.destroy());
    s.write('POST /upload HTTP/1.1\r\nHost: api\r\ncontent-length: 100000\r\n\r\n0123456789');
  });
  expect(outcome(slow)).toBe('408 request_body_timeout');
}, 60_000);
