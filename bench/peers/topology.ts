// Starts the measured topologies on loopback: the app, and the Tessera / nginx / HAProxy proxy pairs in front of it.
import { mkdir, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from '../../shared-io/node-flags.js';
import type { ProcessSupervisor, SupervisedProcess } from '../../shared-io/process-supervisor.js';
import { type BenchPki, CLIENT_ID, type LeafFiles, SERVER_DNS, SERVER_ID } from '../harness/bench-pki.js';
import type { PeerBinaries } from '../harness/peer-binaries.js';
import { freePorts } from '../harness/ports.js';
import { haproxyClientProxyConfig, haproxyServerProxyConfig, parseShowInfo } from './haproxy-config.js';
import { nginxAppConfig, nginxClientProxyConfig, nginxServerProxyConfig, parseStubStatus } from './nginx-config.js';
import { allowPolicyYaml, sumMetric, type TesseraAuthz, tesseraClientProxyConfig, tesseraEdgeProxyConfig, tesseraServerProxyConfig } from './tessera-config.js';

/** The built CLI beside this file (dist/bench/peers → dist/cli/tessera.js). */
export const TESSERA_CLI = fileURLToPath(new URL('../../cli/tessera.js', import.meta.url));

/**
 * How the bench starts a Tessera command (`cli`: this build's or a baseline's): the Node running the bench with the
 * V8 flags every Tessera process runs with (NODE_FLAGS), as `ctx.group.start` takes it. One place, so that no
 * scenario starts one without them (the handshake scenario and the holds did, and warned).
 */
export function tesseraCommand(cli: string, ...args: string[]): { command: string; args: string[] } {
  return { command: process.execPath, args: [...NODE_FLAGS, cli, ...args] };
}
const TINY_APP = fileURLToPath(new URL('../harness/children/tiny-app.js', import.meta.url));
const OTLP_SINK = fileURLToPath(new URL('../harness/children/otlp-sink.js', import.meta.url));

export interface TopologyEnv {
  readonly group: ProcessSupervisor;
  readonly pki: BenchPki;
  readonly client: LeafFiles;
  readonly server: LeafFiles;
  readonly workDir: string;
  readonly binaries: PeerBinaries;
  /** The `tessera` CLI script to run the proxy with (default: the build this harness belongs to). */
  readonly tesseraCli: string;
}

export interface AppHandle {
  readonly port: number;
  readonly process: SupervisedProcess;
  readonly kind: 'nginx' | 'node';
}

export interface PairHandle {
  readonly name: string;
  /** Plaintext entry: the client-side proxy's listener. */
  readonly entryPort: number;
  /** The server-side proxy's mTLS listener. */
  readonly serverPort: number;
  readonly client: SupervisedProcess;
  readonly server: SupervisedProcess;
  /** Upstream (proxy-to-proxy) TLS connections opened so far, or null when this pair cannot count them. */
  upstreamConnections(): Promise<number | null>;
}

export function httpGetText(url: string, timeoutMs = 2_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout fetching ${url}`)));
    req.on('error', reject);
  });
}

function unixCommand(socketPath: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(socketPath);
    let out = '';
    s.setEncoding('utf8');
    s.on('connect', () => s.write(`${command}\n`));
    s.on('data', (c: string) => {
      out += c;
    });
    s.on('end', () => resolve(out));
    s.on('error', reject);
    s.setTimeout(2_000, () => s.destroy(new Error(`timeout on ${socketPath}`)));
  });
}

async function instanceDir(env: TopologyEnv, name: string): Promise<string> {
  const dir = join(env.workDir, name);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** The app: nginx `return 200 "ok\n"` with one worker; a tiny Node app when nginx is missing. */
export async function startApp(env: TopologyEnv, opts: { http2?: boolean; name?: string } = {}): Promise<AppHandle> {
  const [port] = await freePorts(1);
  const name = opts.name ?? 'app';
  if (env.binaries.nginx) {
    const dir = await instanceDir(env, name);
    const conf = join(dir, 'nginx.conf');
    await writeFile(conf, nginxAppConfig({ prefix: dir }, port!, opts));
    const p = await env.group.start({ name, command: env.binaries.nginx, args: ['-e', join(dir, 'error.log'), '-p', dir, '-c', conf, '-g', 'daemon off;'], ready: { port: port! } });
    return { port: port!, process: p, kind: 'nginx' };
  }
  const p = await env.group.start({ name, command: process.execPath, args: [TINY_APP, String(port)], ready: { port: port! } });
  return { port: port!, process: p, kind: 'node' };
}

export interface NginxPairOptions {
  readonly http2In?: boolean;
  readonly client?: LeafFiles;
  readonly server?: LeafFiles;
  readonly name?: string;
  /** Edge mode: the client side terminates TLS from outside clients with this certificate. */
  readonly edgeTls?: LeafFiles;
}

export async function startNginxPair(env: TopologyEnv, appPort: number, opts: NginxPairOptions = {}): Promise<PairHandle> {
  const nginx = env.binaries.nginx;
  if (!nginx) throw new Error('nginx not installed');
  const [entryPort, serverPort, statusPort] = await freePorts(3);
  const slug = opts.name ?? (opts.edgeTls ? 'nginx-edge' : opts.http2In ? 'nginx-h2' : 'nginx');
  const dir = await instanceDir(env, `${slug}-pair`);
  const clientLeaf = opts.client ?? env.client;
  const serverLeaf = opts.server ?? env.server;
  const serverConf = join(dir, 'server.conf');
  const clientConf = join(dir, 'client.conf');
  const tls = { rootFile: env.pki.rootFile };
  await writeFile(serverConf, nginxServerProxyConfig({ prefix: dir, listenPort: serverPort!, appPort, statusPort: statusPort!, chainFile: serverLeaf.chainFile, keyFile: serverLeaf.keyFile, ...tls }));
  await writeFile(
    clientConf,
    nginxClientProxyConfig({ prefix: dir, listenPort: entryPort!, upstreamPort: serverPort!, chainFile: clientLeaf.chainFile, keyFile: clientLeaf.keyFile, serverName: SERVER_DNS, http2In: opts.http2In ?? false, ...tls,
      ...(opts.edgeTls ? { tlsIn: { chainFile: opts.edgeTls.chainFile, keyFile: opts.edgeTls.keyFile } } : {}) }),
  );
  const args = (conf: string, log: string) => ['-e', join(dir, log), '-p', dir, '-c', conf, '-g', 'daemon off;'];
  const server = await env.group.start({ name: `${slug}-server`, command: nginx, args: args(serverConf, 'server-startup.log'), ready: { port: serverPort! } });
  const client = await env.group.start({ name: `${slug}-client`, command: nginx, args: args(clientConf, 'client-startup.log'), ready: { port: entryPort! } });
  let statusCalls = 0;
  return {
    name: opts.edgeTls ? 'nginx edge' : 'nginx pair',
    entryPort: entryPort!,
    serverPort: serverPort!,
    client,
    server,
    async upstreamConnections() {
      statusCalls++;
      const s = parseStubStatus(await httpGetText(`http://127.0.0.1:${statusPort}/status`));
      // Every status request is itself an accepted connection: take those out.
      return s ? s.accepts - statusCalls : null;
    },
  };
}

export interface HaproxyPairOptions {
  /** h2c in, h2 over mTLS (mesh-h2). */
  readonly http2?: boolean;
  /** HTTP/1.1 in, h2 over mTLS between the two HAProxies, HTTP/1.1 to the app (mesh "h2 upstream" row). */
  readonly h2Upstream?: boolean;
}

export async function startHaproxyPair(env: TopologyEnv, appPort: number, opts: HaproxyPairOptions = {}): Promise<PairHandle> {
  const haproxy = env.binaries.haproxy;
  if (!haproxy) throw new Error('haproxy not installed');
  const [entryPort, serverPort] = await freePorts(2);
  const http2 = opts.http2 ?? false;
  const h2Upstream = opts.h2Upstream ?? false;
  const slug = http2 ? 'haproxy-h2' : h2Upstream ? 'haproxy-h2up' : 'haproxy';
  const dir = await instanceDir(env, `${slug}-pair`);
  const serverSock = join(dir, 'server.sock');
  const serverConf = join(dir, 'server.cfg');
  const clientConf = join(dir, 'client.cfg');
  await writeFile(
    serverConf,
    haproxyServerProxyConfig({ statsSocket: serverSock, listenPort: serverPort!, appPort, combinedFile: env.server.combinedFile, rootFile: env.pki.rootFile, allowedClientId: CLIENT_ID, http2: http2 || h2Upstream }),
  );
  await writeFile(
    clientConf,
    haproxyClientProxyConfig({ statsSocket: join(dir, 'client.sock'), listenPort: entryPort!, upstreamPort: serverPort!, combinedFile: env.client.combinedFile, rootFile: env.pki.rootFile, serverName: SERVER_DNS, http2, h2Upstream }),
  );
  const server = await env.group.start({ name: `${slug}-server`, command: haproxy, args: ['-f', serverConf, '-db'], ready: { port: serverPort! } });
  const client = await env.group.start({ name: `${slug}-client`, command: haproxy, args: ['-f', clientConf, '-db'], ready: { port: entryPort! } });
  return {
    name: 'haproxy pair',
    entryPort: entryPort!,
    serverPort: serverPort!,
    client,
    server,
    async upstreamConnections() {
      const info = parseShowInfo(await unixCommand(serverSock, 'show info'));
      const v = Number(info['CumSslConns']);
      return Number.isFinite(v) ? v : null;
    },
  };
}

export interface TesseraPairHandle extends PairHandle {
  readonly clientAdminPort: number;
  readonly serverAdminPort: number;
  metrics(side: 'client' | 'server'): Promise<string>;
}

export interface TesseraPairOptions {
  readonly client?: LeafFiles;
  readonly server?: LeafFiles;
  readonly name?: string;
  /**
   * `protocol` of both listeners (DESIGN.md section 8). `http2`: the load speaks h2c to the client side, the
   * proxies h2 over one mTLS session, and the server side h2c to the app, so the app must speak h2c.
   */
  readonly protocol?: 'http' | 'http2';
  /** `policy` (default): a policies dir allowing exactly the client's ID; `allow`: `defaultAction: allow`. */
  readonly authz?: 'policy' | 'allow';
  /** `off` (default) or `file`: JSON access log lines to `<pair dir>/{client,server}-access.log`. */
  readonly accessLog?: 'off' | 'file';
  /** Tracing on both proxies (sampler ratio 1 unless given) to this OTLP/HTTP traces endpoint. */
  readonly tracing?: { readonly otlpEndpoint: string; readonly samplerRatio?: number };
  /**
   * Edge mode: the client side is an `edge` listener terminating TLS from outside clients with this certificate
   * (no client certificates, `authorize: false`), routing `*` and `/` to the server side over mTLS.
   */
  readonly edgeTls?: LeafFiles;
  /** `transport.multiplex` of both proxies (default: the proxies' default, on). */
  readonly multiplex?: boolean;
  /** `transport.sessionsPerPeer` of the client side (docs/transport.md); absent: the default (1). */
  readonly sessionsPerPeer?: number;
  /** `workers:` of each side (docs/workers.md); absent: 1 (one process). */
  readonly workers?: { readonly client?: number; readonly server?: number };
  /** Another build's `dist/cli/tessera.js` to run both proxies with (`--baseline-cli`); absent: the harness's own. */
  readonly cli?: string;
}

const workersKey = (n: number | undefined) => (n && n > 1 ? `workers: ${n}\n` : '');

/** The Tessera pair: `tessera proxy --config F` twice, file identities, an ALLOW policy for the client's ID. */
export async function startTesseraPair(env: TopologyEnv, appPort: number, opts: TesseraPairOptions = {}): Promise<TesseraPairHandle> {
  const [entryPort, serverPort, clientAdminPort, serverAdminPort] = await freePorts(4);
  const dir = await instanceDir(env, opts.name ?? 'tessera-pair');
  const policiesDir = join(dir, 'policies');
  await mkdir(policiesDir, { recursive: true });
  await writeFile(join(policiesDir, 'allow-client.yaml'), allowPolicyYaml(SERVER_ID, CLIENT_ID));
  const authorization: TesseraAuthz = opts.authz === 'allow' ? { defaultAction: 'allow' } : { policiesDir };
  const accessLog = (side: string) => (opts.accessLog === 'file' ? join(dir, `${side}-access.log`) : 'off');
  const tracing = opts.tracing ? { tracing: { otlpEndpoint: opts.tracing.otlpEndpoint, samplerRatio: opts.tracing.samplerRatio ?? 1 } } : {};
  const clientIdentity = opts.client ?? env.client;
  const serverIdentity = opts.server ?? env.server;
  const serverConf = join(dir, 'server.yaml');
  const clientConf = join(dir, 'client.yaml');
  await writeFile(
    serverConf,
    tesseraServerProxyConfig({
      identity: { certFile: serverIdentity.chainFile, keyFile: serverIdentity.keyFile, bundleFile: env.pki.rootFile },
      listenPort: serverPort!,
      appPort,
      adminPort: serverAdminPort!,
      authorization,
      accessLog: accessLog('server'),
      protocol: opts.protocol ?? 'http',
      ...tracing,
      ...(opts.multiplex !== undefined ? { multiplex: opts.multiplex } : {}),
    }) + workersKey(opts.workers?.server),
  );
  const clientCommon = {
    identity: { certFile: clientIdentity.chainFile, keyFile: clientIdentity.keyFile, bundleFile: env.pki.rootFile },
    listenPort: entryPort!,
    upstreamPort: serverPort!,
    upstreamSpiffeId: SERVER_ID,
    adminPort: clientAdminPort!,
    authorization,
    accessLog: accessLog('client'),
    ...tracing,
    ...(opts.multiplex !== undefined ? { multiplex: opts.multiplex } : {}),
    ...(opts.sessionsPerPeer !== undefined ? { sessionsPerPeer: opts.sessionsPerPeer } : {}),
  };
  await writeFile(
    clientConf,
    (opts.edgeTls
      ? tesseraEdgeProxyConfig({ ...clientCommon, certFile: opts.edgeTls.chainFile, keyFile: opts.edgeTls.keyFile })
      : tesseraClientProxyConfig({ ...clientCommon, protocol: opts.protocol ?? 'http' })) + workersKey(opts.workers?.client),
  );
  const ready = { line: /tessera proxy: ready/ };
  const start = (name: string, conf: string) => env.group.start({ name, ...tesseraCommand(opts.cli ?? env.tesseraCli, 'proxy', '--config', conf), cwd: dir, ready, readyTimeoutMs: 20_000 });
  const server = await start(`${opts.name ?? 'tessera'}-server`, serverConf);
  const client = await start(`${opts.name ?? 'tessera'}-client`, clientConf);
  const metrics = (side: 'client' | 'server') => httpGetText(`http://127.0.0.1:${side === 'client' ? clientAdminPort : serverAdminPort}/metrics`);
  return {
    name: opts.edgeTls ? 'tessera edge' : 'tessera pair',
    entryPort: entryPort!,
    serverPort: serverPort!,
    client,
    server,
    clientAdminPort: clientAdminPort!,
    serverAdminPort: serverAdminPort!,
    metrics,
    async upstreamConnections() {
      // The counter has no sample until the first connection opens: a scrape without it means 0 so far.
      const text = await metrics('client');
      const direction = opts.edgeTls ? 'edge' : 'outbound';
      return sumMetric(text, 'tessera_upstream_connections_opened_total', (labels) => labels.includes(`direction="${direction}"`)) ?? 0;
    },
  };
}

export interface OtlpSinkStats {
  readonly exports: number;
  readonly spans: number;
  readonly bytes: number;
  readonly unparsed: number;
}

export interface OtlpSinkHandle {
  readonly port: number;
  readonly process: SupervisedProcess;
  /** The OTLP/HTTP traces URL to give the proxies. */
  readonly endpoint: string;
  stats(): Promise<OtlpSinkStats>;
}

/** The OTLP/HTTP sink (`harness/children/otlp-sink.ts`) as its own process, so its CPU is not the proxies'. */
export async function startOtlpSink(env: TopologyEnv): Promise<OtlpSinkHandle> {
  const [port] = await freePorts(1);
  const p = await env.group.start({ name: 'otlp-sink', command: process.execPath, args: [OTLP_SINK, String(port)], ready: { port: port! } });
  return {
    port: port!,
    process: p,
    endpoint: `http://127.0.0.1:${port}/v1/traces`,
    stats: async () => JSON.parse(await httpGetText(`http://127.0.0.1:${port}/stats`)) as OtlpSinkStats,
  };
}
