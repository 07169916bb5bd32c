// A plaintext caller on a permissive TCP listener that resets while the proxy is still connecting to the app must
// not take the proxy down (the socket had no 'error' listener in that window), nor leave the app connection open.
// The app is a real listening socket whose accept queue is full, so the proxy's connect to it stays pending.
import { writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { SupervisedProcess } from '../../shared-io/process-supervisor.js';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { startTestProcess } from '../helpers/ready-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';

const API = 'spiffe://example.org/ns/default/sa/api';
// Listens with a backlog of 0 and fills it itself, never accepting: further connects hang (SYNs dropped).
const BLACKHOLE = `
import socket, time
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)
port = s.getsockname()[1]
fill = []
for i in range(4):
    c = socket.socket(); c.setblocking(False)
    try: c.connect(('127.0.0.1', port))
    except BlockingIOError: pass
    fill.append(c)
print(port, flush=True)
time.sleep(60)
`;

let dir: string;
let cleanup: () => Promise<void>;
let proxy: ProxyProcess;
let blackhole: SupervisedProcess | undefined;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  // Its one output line is the port it listens on.
  blackhole = await startTestProcess({ name: 'blackhole', command: 'python3', args: ['-c', BLACKHOLE], ready: { line: /^\d+$/ }, readyTimeoutMs: 10_000 });
  const appPort = Number(blackhole.readyLine);
  const ca = await TestCa.create({ trustDomain: 'example.org' });
  await writeSvidFiles(ca, API, join(dir, 'api'));
  await writeFile(
    join(dir, 'api.yaml'),
    'identity:\n  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }\ninbound:\n' +
      `  - { name: tcp, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort}, protocol: tcp, mtls: permissive }\n` +
      'authorization: { defaultAction: allow }\nadmin: { listen: 127.0.0.1:0 }\nlimits: { drainTimeout: 1s }\n',
  );
  proxy = await startProxyProcess(join(dir, 'api.yaml'));
}, 30_000);

afterAll(async () => {
  await proxy?.stop();
  await blackhole?.stop({ signal: 'SIGKILL' });
  await cleanup?.();
});

test('plaintext callers that reset while the app connection is pending leave the proxy up', async () => {
  const port = proxy.ports.get('inbound/tcp')!;
  for (let i = 0; i < 3; i++) {
    await new Promise<void>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.write('hello');
        setTimeout(() => c.resetAndDestroy(), 200);
      });
      c.on('error', () => undefined);
      c.once('close', () => resolve());
    });
  }
  await new Promise((r) => setTimeout(r, 300));
  expect(proxy.child.exitCode).toBeNull();
  expect(proxy.stderr()).not.toMatch(/ECONNRESET/);
  expect((await fetch(`http://127.0.0.1:${proxy.admin}/healthz`)).status).toBe(200);
});
