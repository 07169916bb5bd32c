// A proxy out of file descriptors. The real `tessera proxy` gets a low descriptor limit (prlimit on its pid); a client
// holds connections past it (libuv takes EMFILE at accept by closing the connection it cannot keep; any other accept
// error is the listening server's 'error', which every listener now takes: listeners/keep-accepting.ts), asks for
// more while nothing is left (a request, the admin listener), then lets them go: the process is still up and serves.
import { writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir, run } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
let dir: string;
let cleanup: () => Promise<void>;
let app: http.Server;
let proxy: ProxyProcess;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const ca = await TestCa.create({ trustDomain: TD });
  app = http.createServer((_req, res) => res.end('app'));
  const appPort = await new Promise<number>((r) => app.listen(0, '127.0.0.1', () => r((app.address() as net.AddressInfo).port)));
  await writeSvidFiles(ca, `spiffe://${TD}/ns/default/sa/web`, join(dir, 'web'));
  // An outbound HTTP/1.1 listener to a plain app stand-in: each accepted client costs the proxy one descriptor.
  await writeFile(
    join(dir, 'web.yaml'),
    'identity:\n  files: { certFile: web/svid.pem, keyFile: web/key.pem, bundleFile: web/bundle.pem }\n' +
      `outbound:\n  - { name: app, listen: 127.0.0.1:0, upstream: 127.0.0.1:${appPort}, spiffeId: spiffe://${TD}/ns/default/sa/api }\n` +
      'authorization: { defaultAction: allow }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n',
  );
  proxy = await startProxyProcess(join(dir, 'web.yaml'));
}, 30_000);

afterAll(async () => {
  await proxy?.stop();
  await new Promise<void>((r) => (app ? app.close(() => r()) : r()));
  await cleanup?.();
});

function open(port: number): Promise<net.Socket | null> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.on('error', () => resolve(null));
  });
}

test('connections past the descriptor limit fail at accept; the process stays up and serves once they are gone', async () => {
  const pid = proxy.child.pid!;
  const fds = async () => (await run('ls', [`/proc/${pid}/fd`])).stdout.trim().split('\n').length;
  const limit = (await fds()) + 20;
  const set = await run('prlimit', ['--pid', String(pid), `--nofile=${limit}:${limit}`]);
  expect(set.code, set.stderr).toBe(0);
  const port = proxy.ports.get('outbound/app')!;
  const admin = proxy.admin;
  const held: net.Socket[] = [];
  try {
    // The kernel completes the TCP handshake for the backlog whatever the process can accept: 60 connections
    // leave ~40 the proxy tries to accept with no descriptor left.
    for (let i = 0; i < 60; i++) {
      const s = await open(port);
      if (s) held.push(s);
    }
    await until('no descriptor left', async () => (await fds()) >= limit, 10_000, 50);
    // Out of descriptors: a request (no upstream connection can be had), the admin listener. Each may fail; the
    // process may not.
    await run('curl', ['-s', '--max-time', '3', '-o', '/dev/null', `http://127.0.0.1:${port}/`]);
    const probe = await open(admin);
    probe?.destroy();
    await new Promise((r) => setTimeout(r, 200));
    expect(proxy.child.exitCode, proxy.stderr()).toBeNull();
  } finally {
    for (const s of held) s.destroy();
  }
  await until('descriptors back', async () => (await fds()) < limit - 5, 10_000, 50);
  const res = await run('curl', ['-s', '--max-time', '10', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${port}/`]);
  // The upstream is a plain app that speaks no mTLS: any HTTP answer from the proxy shows it serving again.
  expect(Number(res.stdout)).toBeGreaterThanOrEqual(200);
  expect((await fetch(`http://127.0.0.1:${admin}/ready`)).status).toBe(200);
  expect(proxy.child.exitCode).toBeNull();
}, 60_000);
