// Apps that pipeline forwarded requests faster than they are answered and do not read, through the outbound
// HTTP/1.1 listener of a real `tessera proxy` pair (audit 34a F1): 20 connections, each writing batches of ~2 KiB
// requests (allowed, forwarded to the app over tessera-mux/1, or over a keep-alive connection per exchange with
// `transport.multiplex: false`) for 6 s at most, 24 MiB at most, whether or not the proxy reads it. Before the fix the
// session resumed reading after every exchange whatever it already held, so each answer let one more read (up to
// 64 KiB) in for 2 KiB parsed: the held bytes of each connection grew without bound, and the outbound proxy's RSS by
// hundreds of MiB (384 and 488 MiB here; 26 and 28 MiB after). Now a connection holding more than maxHeaderBytes of
// pipelined requests is not read on until they are parsed: RSS must stay within a bound, another caller is served.
// Raw sockets, loopback.
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import * as net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { peakRssBytes, rssBytes } from '../helpers/process-rss.js';
import { drainedWithin } from '../helpers/socket-drain.js';
import { firstStatus, oneResponse, rawHttp } from '../helpers/raw-http.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const MiB = 1 << 20;
const CONNECTIONS = 20;
/** What each connection sends at most (480 MiB in all): the loopback kernel buffers alone take several MiB. */
const SEND_CAP = 24 * MiB;
/** How long the connections send at most: bounded in time too, whatever the proxy's pace (nothing asserted on it); 3 s keeps the full suite's other files from starving beside it, and the old code grew past the bound well within it. */
const SEND_MS = 3_000;
/** The proxy's RSS may grow this much for the 20 connections (kernel-side and parse garbage included). */
const RSS_BOUND = 100 * MiB;
/** 100 pipelined requests of about 2 KiB each, as the audit's client wrote them. */
const BATCH = Buffer.from(`GET /public/${'y'.repeat(2_000)} HTTP/1.1\r\nHost: a\r\n\r\n`.repeat(100), 'latin1');

let dir: string;
let cleanup: () => Promise<void>;
let api: ProxyProcess;
let web: ProxyProcess;
let webDirect: ProxyProcess;
let app: { close(): void };

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 3 });
    res.end('ok\n');
  });
  const appPort = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as net.AddressInfo).port)));
  app = { close: () => server.close() };
  const ca = await TestCa.create({ trustDomain: TD });
  await writeSvidFiles(ca, API, join(dir, 'api'));
  await writeSvidFiles(ca, WEB, join(dir, 'web'));
  const identity = (name: string) => `identity:\n  files: { certFile: ${name}/svid.pem, keyFile: ${name}/key.pem, bundleFile: ${name}/bundle.pem }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n`;
  await writeFile(
    join(dir, 'api.yaml'),
    `${identity('api')}authorization: { defaultAction: allow }\ninbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort}, protocol: http }\n`,
  );
  api = await startProxyProcess(join(dir, 'api.yaml'));
  const outbound = `outbound:\n  - { name: api, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/app')}, spiffeId: ${API}, protocol: http }\n`;
  await writeFile(join(dir, 'web.yaml'), `${identity('web')}${outbound}`);
  await writeFile(join(dir, 'web-direct.yaml'), `${identity('web')}${outbound}transport: { multiplex: false }\n`);
  [web, webDirect] = await Promise.all([startProxyProcess(join(dir, 'web.yaml')), startProxyProcess(join(dir, 'web-direct.yaml'))]);
}, 60_000);

afterAll(async () => {
  await Promise.all([web?.stop(), webDirect?.stop()]);
  await api?.stop();
  app?.close();
  await cleanup?.();
});

/** Resident memory of a proxy process, from /proc. */
const rss = (p: ProxyProcess) => rssBytes(p.child.pid!);

/** The largest RSS seen while `during` runs (sampled every 100 ms) and just after it. */
const peakRss = (p: ProxyProcess, during: () => Promise<void>) => peakRssBytes(p.child.pid!, during);

/**
 * Writes BATCH again and again, reading nothing, until SEND_CAP is sent, the socket closes, or `untilMs` passed (a
 * proxy that stops reading the caller, as it should once it holds enough, leaves the last write waiting until then).
 */
async function flood(socket: net.Socket, untilMs: number): Promise<void> {
  let sent = 0;
  while (sent < SEND_CAP && !socket.destroyed && Date.now() < untilMs) {
    sent += BATCH.length;
    if (socket.write(BATCH)) continue;
    const drained = await drainedWithin(socket, untilMs - Date.now());
    if (!drained) break;
  }
}

/** Opens a connection and stops reading it at once. */
async function unreading(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  socket.pause();
  return socket;
}

async function served(port: number): Promise<number> {
  const r = await rawHttp({ port }, ['GET /public/ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'], { until: oneResponse, capMs: 10_000 });
  return firstStatus(r.text);
}

describe('apps that pipeline forwarded requests and do not read: the outbound proxy reads no further ahead', () => {
  for (const [name, proxy] of [
    ['over tessera-mux/1 (the default)', () => web],
    ['over a keep-alive connection per exchange (transport.multiplex: false)', () => webDirect],
  ] as const) {
    test(name, async () => {
      const p = proxy();
      const port = p.ports.get('outbound/api')!;
      const before = await rss(p);
      const sockets: net.Socket[] = [];
      try {
        const peak = await peakRss(p, async () => {
          for (let i = 0; i < CONNECTIONS; i++) sockets.push(await unreading(port));
          const untilMs = Date.now() + SEND_MS;
          await Promise.all(sockets.map((s) => flood(s, untilMs)));
        });
        expect(peak - before).toBeLessThan(RSS_BOUND);
        expect(await served(port)).toBe(200);
      } finally {
        for (const s of sockets) s.destroy();
      }
    }, 120_000);
  }
});
