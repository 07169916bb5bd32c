// Idle hold: N (default 10,000) idle connections to each listener kind of a real `tessera proxy` (mTLS handshake
// completed where the listener is mTLS, TLS at the edge, plain on outbound; h2 clients also send the preface),
// one proxy process per kind so its RSS, fds and CPU are that kind's alone. Reports RSS and CPU per connection,
// whether every connection stayed open through the hold, that the process is alive and that a new request is
// still served. Not part of `npm test`: `node_modules/.bin/node dist/bench/hold/idle.js [--connections 10000]`.
import { readFile, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import * as net from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { TesseraError } from '../../common/errors.js';
import type { SupervisedProcess } from '../../shared-io/process-supervisor.js';
import type { BenchContext } from '../harness/bench-context.js';
import { SERVER_ID } from '../harness/bench-pki.js';
import { freePorts } from '../harness/ports.js';
import { startApp, tesseraCommand } from '../peers/topology.js';
import { durationFlag, flag, openFilesLimit, openMany, type ProcSample, sampleProcess, withHoldContext, writeJson } from './hold-common.js';

const TCP_SINK = fileURLToPath(new URL('./tcp-sink.js', import.meta.url));

type Proto = 'http' | 'http2' | 'grpc' | 'tcp';
interface Kind {
  readonly name: string;
  readonly section: 'inbound' | 'outbound' | 'edge';
  readonly protocol: Proto;
  /** What the client negotiates: ALPN h2 or http/1.1; TCP has none. */
  readonly h2: boolean;
}

const KINDS: readonly Kind[] = [
  { name: 'inbound http (mTLS)', section: 'inbound', protocol: 'http', h2: false },
  { name: 'inbound http2 (mTLS)', section: 'inbound', protocol: 'http2', h2: true },
  { name: 'inbound grpc (mTLS)', section: 'inbound', protocol: 'grpc', h2: true },
  { name: 'inbound tcp (mTLS)', section: 'inbound', protocol: 'tcp', h2: false },
  { name: 'outbound http (plain)', section: 'outbound', protocol: 'http', h2: false },
  { name: 'outbound http2 (h2c)', section: 'outbound', protocol: 'http2', h2: true },
  { name: 'edge http/1.1 (TLS)', section: 'edge', protocol: 'http', h2: false },
  { name: 'edge h2 (TLS)', section: 'edge', protocol: 'http', h2: true },
];

/** The bench context and the root every client trusts. */
type HoldCtx = BenchContext & { readonly rootPem: string };

const PREFACE = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]);
// Long enough that nothing is cut during the hold: this measures what an idle connection costs, not the timeouts.
const LIMITS = { headersTimeout: '30m', idleTimeout: '30m', handshakeTimeout: '10s', maxConnections: 50_000 };

interface KindResult {
  readonly kind: string;
  readonly connections: number;
  readonly opened: number;
  readonly failed: number;
  readonly openSeconds: number;
  readonly stillOpenAfterHold: number;
  readonly alive: boolean;
  readonly servedAfter: boolean;
  readonly servedStatus: number | string;
  readonly rssBeforeKb: number;
  readonly rssAfterKb: number;
  readonly rssAfterHoldKb: number;
  readonly rssPerConnectionKb: number;
  readonly fdsBefore: number;
  readonly fdsAfter: number;
  readonly cpuMsPerConnectionOpen: number;
  readonly cpuShareDuringHold: number;
}

function proxyYaml(ctx: BenchContext, kind: Kind, port: number, adminPort: number, upstream: { app: number; h2App: number; tcpApp: number; sidecarHttp: number; sidecarH2: number }): string {
  const id = kind.section === 'inbound' ? ctx.server : ctx.client;
  const listener =
    kind.section === 'inbound'
      ? { inbound: [{ name: 'held', listen: `127.0.0.1:${port}`, forwardTo: `127.0.0.1:${kind.h2 ? upstream.h2App : kind.protocol === 'tcp' ? upstream.tcpApp : upstream.app}`, protocol: kind.protocol }] }
      : kind.section === 'outbound'
        ? { outbound: [{ name: 'held', listen: `127.0.0.1:${port}`, upstream: `127.0.0.1:${kind.h2 ? upstream.sidecarH2 : upstream.sidecarHttp}`, spiffeId: SERVER_ID, protocol: kind.protocol }] }
        : { edge: [{ name: 'held', listen: `127.0.0.1:${port}`, certFile: ctx.server.chainFile, keyFile: ctx.server.keyFile, authorize: false, routes: [{ host: '*', pathPrefix: '/', upstream: `127.0.0.1:${upstream.sidecarHttp}`, spiffeId: SERVER_ID }] }] };
  return stringify({
    identity: { files: { certFile: id.chainFile, keyFile: id.keyFile, bundleFile: ctx.pki.rootFile } },
    ...listener,
    authorization: { defaultAction: 'allow' },
    admin: { listen: `127.0.0.1:${adminPort}` },
    telemetry: { accessLog: 'off' },
    limits: LIMITS,
  });
}

async function startProxy(ctx: BenchContext, name: string, yaml: string): Promise<SupervisedProcess> {
  const file = join(ctx.opts.workDir, `${name}.yaml`);
  await writeFile(file, yaml);
  return ctx.group.start({ name, ...tesseraCommand(ctx.env.tesseraCli, 'proxy', '--config', file), cwd: ctx.opts.workDir, ready: { line: /tessera proxy: ready/ }, readyTimeoutMs: 20_000 });
}

/** One idle client connection: handshake done (and the h2 preface sent); resolves once it is established. */
function connectIdle(ctx: HoldCtx, kind: Kind, port: number, sockets: Set<net.Socket>): Promise<boolean> {
  return new Promise((resolve) => {
    const alpn = kind.protocol === 'tcp' ? [] : kind.h2 ? ['h2'] : ['http/1.1'];
    const socket: net.Socket =
      kind.section === 'outbound'
        ? net.connect(port, '127.0.0.1')
        : tls.connect({ host: '127.0.0.1', port, ALPNProtocols: alpn, ca: ctx.rootPem, checkServerIdentity: () => undefined, ...(kind.section === 'inbound' ? { cert: ctx.client.chainPem, key: ctx.client.keyPem } : {}) });
    socket.on('error', () => resolve(false));
    socket.once(kind.section === 'outbound' ? 'connect' : 'secureConnect', () => {
      if (kind.h2) socket.write(PREFACE);
      socket.resume(); // the server's SETTINGS and PING acks are read and dropped
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      resolve(true);
    });
  });
}

/** A new request on a new connection, as that kind's clients make it: the listener still serves. */
async function oneRequest(ctx: HoldCtx, kind: Kind, port: number): Promise<number | string> {
  const tlsOpts = { ca: ctx.rootPem, checkServerIdentity: () => undefined, ...(kind.section === 'inbound' ? { cert: ctx.client.chainPem, key: ctx.client.keyPem } : {}) };
  try {
    if (kind.protocol === 'tcp') {
      // The inbound TCP listener relays to the HTTP app: an HTTP/1.1 request through the relay.
      return await new Promise((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port, ...tlsOpts }, () => s.write('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'));
        let out = '';
        s.on('data', (d: Buffer) => {
          out += d.toString('latin1');
        });
        s.on('end', () => resolve(Number(out.slice(9, 12)) || out.slice(0, 40)));
        s.on('error', reject);
        s.setTimeout(10_000, () => s.destroy(new Error('timeout')));
      });
    }
    if (kind.h2) {
      const session = http2.connect(kind.section === 'outbound' ? `http://127.0.0.1:${port}` : `https://127.0.0.1:${port}`, tlsOpts);
      try {
        return await new Promise((resolve, reject) => {
          const req = session.request({ ':path': '/' });
          req.on('response', (h) => resolve(Number(h[':status'])));
          req.on('error', reject);
          session.on('error', reject);
          req.setTimeout(10_000, () => req.close());
          req.resume();
          req.end();
        });
      } finally {
        session.close();
      }
    }
    const mod = kind.section === 'outbound' ? http : https;
    return await new Promise((resolve, reject) => {
      const req = mod.request({ host: '127.0.0.1', port, path: '/', agent: false, ...(kind.section === 'outbound' ? {} : tlsOpts) }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end();
    });
  } catch (e) {
    return (e as Error).message;
  }
}

async function holdKind(ctx: HoldCtx, kind: Kind, count: number, holdMs: number, upstream: Parameters<typeof proxyYaml>[4]): Promise<KindResult> {
  const log = ctx.opts.log;
  const [port, adminPort] = await freePorts(2);
  const proxy = await startProxy(ctx, `held-${kind.section}-${kind.protocol}${kind.h2 ? '-h2' : ''}`, proxyYaml(ctx, kind, port!, adminPort!, upstream));
  try {
    const warm = await oneRequest(ctx, kind, port!);
    if (warm !== 200) log(`${kind.name}: warm-up request answered ${warm}`);
    await new Promise((r) => setTimeout(r, 1_000));
    const before = sampleProcess(proxy.pid)!;
    const sockets = new Set<net.Socket>();
    const t0 = Date.now();
    // 64 handshakes in flight: enough to keep the proxy busy, few enough not to hit its accept backlog.
    const { opened, failed } = await openMany(count, 64, () => connectIdle(ctx, kind, port!, sockets), ctx.opts.signal, (o, f) => log(`${kind.name}: ${o} open, ${f} failed`));
    if (ctx.opts.signal?.aborted) throw new TesseraError('TESSERA_ERR_BENCH_ABORTED');
    const openSeconds = (Date.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 2_000));
    const after = sampleProcess(proxy.pid)!;
    await new Promise((r) => setTimeout(r, holdMs));
    const held = sampleProcess(proxy.pid);
    const servedStatus = await oneRequest(ctx, kind, port!);
    const stillOpen = sockets.size;
    const r = summarize(kind, count, { opened, failed, openSeconds, stillOpen, servedStatus, holdMs }, before, after, held, ctx.clockTicksPerSecond);
    log(`${kind.name}: ${opened}/${count} open in ${openSeconds.toFixed(1)} s, ${r.rssPerConnectionKb} KiB and ${r.cpuMsPerConnectionOpen} ms CPU per connection, ${stillOpen} still open after ${holdMs / 1000} s, served after: ${servedStatus}`);
    for (const s of sockets) s.destroy();
    return r;
  } finally {
    await proxy.stop();
  }
}

function summarize(
  kind: Kind,
  count: number,
  o: { opened: number; failed: number; openSeconds: number; stillOpen: number; servedStatus: number | string; holdMs: number },
  before: ProcSample,
  after: ProcSample,
  held: ProcSample | null,
  ticksPerSecond: number,
): KindResult {
  const perConn = (x: number) => (o.opened > 0 ? x / o.opened : 0);
  return {
    kind: kind.name,
    connections: count,
    opened: o.opened,
    failed: o.failed,
    openSeconds: Number(o.openSeconds.toFixed(1)),
    stillOpenAfterHold: o.stillOpen,
    alive: held !== null,
    servedAfter: o.servedStatus === 200,
    servedStatus: o.servedStatus,
    rssBeforeKb: before.rssKb,
    rssAfterKb: after.rssKb,
    rssAfterHoldKb: held?.rssKb ?? 0,
    rssPerConnectionKb: Number(perConn(after.rssKb - before.rssKb).toFixed(1)),
    fdsBefore: before.fds,
    fdsAfter: after.fds,
    cpuMsPerConnectionOpen: Number(((perConn(after.cpuTicks - before.cpuTicks) / ticksPerSecond) * 1000).toFixed(2)),
    cpuShareDuringHold: held ? Number(((held.cpuTicks - after.cpuTicks) / ticksPerSecond / (o.holdMs / 1000)).toFixed(3)) : 0,
  };
}

async function main(argv: readonly string[]): Promise<void> {
  const count = Number(flag(argv, 'connections', '10000'));
  const holdMs = durationFlag(argv, 'hold', '20s');
  const only = flag(argv, 'kinds', '');
  const out = flag(argv, 'json', '');
  const limit = openFilesLimit() ?? 0;
  await withHoldContext('idle', async (bench) => {
    const ctx: HoldCtx = { ...bench, rootPem: await readFile(bench.pki.rootFile, 'utf8') };
    const log = ctx.opts.log;
    if (limit < count + 500) log(`ulimit -n is ${limit}: ${count} client sockets need about ${count + 500} here (raise it: ulimit -n 65536)`);
    const app = await startApp(ctx.env);
    const h2App = http2.createServer();
    h2App.on('stream', (s) => {
      s.respond({ ':status': 200 });
      s.end('ok\n');
    });
    await new Promise<void>((r) => h2App.listen(0, '127.0.0.1', r));
    const h2AppPort = (h2App.address() as net.AddressInfo).port;
    // The upstream sidecar of the outbound and edge kinds (its inbound listeners are not the ones measured).
    const [sHttp, sH2, sAdmin] = await freePorts(3);
    const sidecarYaml = stringify({
      identity: { files: { certFile: ctx.server.chainFile, keyFile: ctx.server.keyFile, bundleFile: ctx.pki.rootFile } },
      inbound: [
        { name: 'app', listen: `127.0.0.1:${sHttp}`, forwardTo: `127.0.0.1:${app.port}`, protocol: 'http' },
        { name: 'app-h2', listen: `127.0.0.1:${sH2}`, forwardTo: `127.0.0.1:${h2AppPort}`, protocol: 'http2' },
      ],
      authorization: { defaultAction: 'allow' },
      admin: { listen: `127.0.0.1:${sAdmin}` },
      telemetry: { accessLog: 'off' },
    });
    await startProxy(ctx, 'upstream-sidecar', sidecarYaml);
    const [tcpApp] = await freePorts(1);
    await ctx.group.start({ name: 'tcp-sink', command: process.execPath, args: [TCP_SINK, String(tcpApp)], ready: { port: tcpApp! } });
    const upstream = { app: app.port, h2App: h2AppPort, tcpApp: tcpApp!, sidecarHttp: sHttp!, sidecarH2: sH2! };
    const results: KindResult[] = [];
    for (const kind of KINDS) {
      if (only && !kind.name.includes(only)) continue;
      // A TCP relay holds two descriptors per connection (client and app): it cannot hold `count` under a lower fd limit.
      const proxyLimit = limit;
      const n = kind.protocol === 'tcp' ? Math.min(count, Math.floor((proxyLimit - 200) / 2)) : count;
      if (n < count) log(`${kind.name}: ${n} connections (a relay needs 2 descriptors each; the fd limit is ${proxyLimit})`);
      results.push(await holdKind(ctx, kind, n, holdMs, upstream));
    }
    h2App.close();
    await writeJson(out || null, { scenario: 'hold-idle', startedAt: ctx.startedAt, machine: { ...ctx.machine, ulimitN: limit }, options: { connections: count, holdMs, limits: LIMITS }, results });
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  });
}
