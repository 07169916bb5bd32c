// Real processes for the tests of how upgraded (WebSocket) connections and TCP/CONNECT tunnels end, and of the
// proxies' gauges of open things while they do: a control plane; upstream sidecars (inbound `app` in front of an app
// that upgrades every request and echoes, inbound `tcp` in front of a TCP echo app); "fronts", callers each with an
// edge listener (TLS) and outbound listeners (a fixed upstream, the same with a total timeout, tcp, and optionally a
// forward proxy), over the multiplexed transport or a connection per request (`plain`). Every tunnel is tagged, so a
// test finds its app connection and ends it from either side, in any of the ways a real peer does.
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import * as net from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { type RunningControlPlane, TD, startControlPlaneProcess, writeControlPlaneConfig } from './control-plane.js';
import { freePort } from './free-port.js';
import { metricsText } from './prom-metrics.js';
import { type ProxyProcess, startProxyProcess, writeAttestedConfig } from './proxy-process.js';
import { TestCa } from './test-ca.js';
import { until } from './until.js';

/** The gauges of open things a proxy keeps (docs/metrics.md): every series of each must come back to its start. */
export const GAUGES = ['tessera_upgraded_connections', 'tessera_connections_active', 'tessera_mux_sessions_active'] as const;
/** A route's or listener's total `timeout` (`-timed`): long enough for a tunnel to open on a loaded machine. */
export const TOTAL_TIMEOUT_MS = 5_000;
export const frontId = (name: string) => `spiffe://${TD}/ns/front/sa/${name}`;
export const upstreamId = (name: string) => `spiffe://${TD}/ns/default/sa/${name}`;
/** Services the upstream started with `service: true` registers (its inbound `app`, and `tcp`). */
export const SERVICE = 'api';
export const SERVICE_TCP = 'api-tcp';

/** The apps behind every upstream sidecar; each connection known by its tag (the last path segment, or first line). */
export class TunnelApps {
  readonly sockets = new Map<string, net.Socket>();
  readonly closed = new Set<string>();
  /** Plain requests (the probes of routable()) are answered 200. */
  readonly #http = createServer((_req, res) => res.end('ok'));
  readonly #tcp = net.createServer({ allowHalfOpen: true });

  static async start(): Promise<TunnelApps> {
    const apps = new TunnelApps();
    apps.#http.on('upgrade', (req, s: net.Socket, head: Buffer) => {
      s.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
      apps.#adopt(req.url!.split('/').pop()!, s);
      if (head.length > 0) s.write(head);
      s.on('data', (d: Buffer) => s.write(d));
    });
    apps.#tcp.on('connection', (s: net.Socket) => {
      s.on('error', () => undefined);
      s.on('end', () => s.end());
      let tag = '';
      s.on('data', (d: Buffer) => {
        if (!tag) {
          tag = d.toString('latin1').split('\n')[0]!;
          apps.#adopt(tag, s);
        }
        s.write(d);
      });
    });
    await Promise.all([apps.#http, apps.#tcp].map((srv) => new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))));
    return apps;
  }

  get httpPort(): number {
    return (this.#http.address() as net.AddressInfo).port;
  }

  get tcpPort(): number {
    return (this.#tcp.address() as net.AddressInfo).port;
  }

  /** An app that finishes its side once its client has (so a client's FIN ends the tunnel, as most apps do). */
  #adopt(tag: string, s: net.Socket): void {
    s.allowHalfOpen = true;
    this.sockets.set(tag, s);
    s.on('error', () => undefined);
    s.on('end', () => s.end());
    s.once('close', () => this.closed.add(tag));
  }

  close(): Promise<void> {
    for (const s of this.sockets.values()) s.destroy();
    this.#http.closeAllConnections();
    return Promise.all([this.#http, this.#tcp].map((srv) => new Promise<void>((r) => srv.close(() => r())))).then(() => undefined);
  }
}

export interface Upstream {
  readonly name: string;
  readonly id: string;
  readonly proxy: ProxyProcess;
  /** host:port of its inbound `app` and `tcp` listeners. */
  readonly app: string;
  readonly tcp: string;
}

/** A tunnel a client holds open: `socket` is what it writes and ends, `raw` its TCP connection (a reset goes there). */
export interface Tunnel {
  readonly tag: string;
  readonly label: string;
  readonly socket: net.Socket;
  readonly raw: net.Socket;
  readonly closed: Promise<void>;
}

export type PathKind = 'edge' | 'edge-timed' | 'outbound' | 'outbound-timed' | 'tcp' | 'forward' | 'connect';

export interface TunnelPath {
  readonly label: string;
  open(tag: string): Promise<Tunnel>;
}

const LIMITS = 'limits: { idleTimeout: 5m, drainTimeout: 1s, handshakeTimeout: 5s }\n';

export class TunnelMesh {
  readonly apps: TunnelApps;
  readonly cp: RunningControlPlane;
  readonly siteCa: string;
  readonly #dir: string;
  readonly #procs: ProxyProcess[] = [];

  private constructor(dir: string, apps: TunnelApps, cp: RunningControlPlane, siteCa: string) {
    this.#dir = dir;
    this.apps = apps;
    this.cp = cp;
    this.siteCa = siteCa;
  }

  /** The apps, an edge certificate for `localhost`, and a control plane: every front may call every upstream. */
  static async start(dir: string): Promise<TunnelMesh> {
    const site = await TestCa.create({ trustDomain: 'site.test', rootName: 'CN=Site CA, O=Test' });
    const cert = await site.mintSvid('spiffe://site.test/edge', { dnsSans: ['localhost'] });
    await writeFile(join(dir, 'site.pem'), cert.chainPem);
    await writeFile(join(dir, 'site.key'), cert.keyPem, { mode: 0o600 });
    const cpDir = join(dir, 'cp');
    const cfg = await writeControlPlaneConfig(cpDir, `discovery: { serviceIdentities: { ${SERVICE_TCP}: [${upstreamId(SERVICE)}] } }`, `127.0.0.1:${await freePort()}`);
    await writeFile(
      join(cpDir, 'policies', 'fronts.yaml'),
      `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: fronts-to-upstreams }\nspec:\n  selector: "spiffe://${TD}/ns/default/**"\n  action: ALLOW\n  rules:\n    - from: ["spiffe://${TD}/ns/front/**"]\n`,
    );
    const apps = await TunnelApps.start();
    return new TunnelMesh(dir, apps, await startControlPlaneProcess(cpDir, cfg), site.bundlePem());
  }

  /** An upstream sidecar `name` (its own SPIFFE ID); `service`: its listeners register `api` and `api-tcp`. */
  async upstream(name: string, opts: { service?: boolean } = {}): Promise<Upstream> {
    const svc = (s: string) => (opts.service ? `, service: ${s}` : '');
    const body = `inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${this.apps.httpPort}${svc(SERVICE)} }\n  - { name: tcp, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${this.apps.tcpPort}, protocol: tcp${svc(SERVICE_TCP)} }\n`;
    const proxy = await this.#start(name, upstreamId(name), body, LIMITS);
    return { name, id: upstreamId(name), proxy, app: `127.0.0.1:${proxy.ports.get('inbound/app')}`, tcp: `127.0.0.1:${proxy.ports.get('inbound/tcp')}` };
  }

  /**
   * A caller `name` in front of `ups`: edge routes `/<up>` and `/<up>-timed`, outbound listeners `<up>`, `<up>-timed`
   * and `<up>-tcp`; `forward`: a forward proxy `mesh` too (routable() before its first tunnel); `plain`: a connection
   * per request, not multiplexed.
   */
  async front(name: string, ups: readonly Upstream[], opts: { plain?: boolean; forward?: boolean } = {}): Promise<ProxyProcess> {
    const timed = `, timeout: ${TOTAL_TIMEOUT_MS}ms`;
    const routes = ups.flatMap((u) => [`      - { pathPrefix: /${u.name}, upstream: ${u.app}, spiffeId: ${u.id} }`, `      - { pathPrefix: /${u.name}-timed, upstream: ${u.app}, spiffeId: ${u.id}${timed} }`]);
    const outbound = ups.flatMap((u) => [
      `  - { name: ${u.name}, listen: 127.0.0.1:0, upstream: ${u.app}, spiffeId: ${u.id} }`,
      `  - { name: ${u.name}-timed, listen: 127.0.0.1:0, upstream: ${u.app}, spiffeId: ${u.id}${timed} }`,
      `  - { name: ${u.name}-tcp, listen: 127.0.0.1:0, upstream: ${u.tcp}, spiffeId: ${u.id}, protocol: tcp }`,
    ]);
    if (opts.forward) outbound.push('  - { name: mesh, listen: 127.0.0.1:0, mode: http-proxy }');
    const site = `certFile: ${join(this.#dir, 'site.pem')}\n    keyFile: ${join(this.#dir, 'site.key')}`;
    const body = `edge:\n  - name: public\n    listen: 127.0.0.1:0\n    ${site}\n    routes:\n${routes.join('\n')}\noutbound:\n${outbound.join('\n')}\n`;
    return this.#start(name, frontId(name), body, LIMITS + (opts.plain ? 'transport: { multiplex: false }\n' : ''));
  }

  /**
   * Waits (bounded) until `front`'s forward proxy routes both services (discovery has reached it): a request and a
   * CONNECT through it are answered 200. Each leaves a session to the upstream open, as a real first request does.
   */
  async routable(front: ProxyProcess): Promise<void> {
    const port = front.ports.get('outbound/mesh')!;
    // The answer's first line; the client finishes its side once it has the head (a CONNECT tunnel then closes).
    const ask = (head: string) =>
      new Promise<string>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port }, () => s.write(head));
        let got = '';
        s.on('data', (d: Buffer) => {
          got += d.toString('latin1');
          if (got.includes('\r\n\r\n')) s.end();
        });
        s.on('error', () => undefined);
        s.once('close', () => resolve(got.split('\r\n')[0]!));
      });
    const both = async () =>
      (await ask(`GET http://${SERVICE}/probe HTTP/1.1\r\nHost: ${SERVICE}\r\nConnection: close\r\n\r\n`)).startsWith('HTTP/1.1 200 ') &&
      (await ask(`CONNECT ${SERVICE_TCP}:9000 HTTP/1.1\r\nHost: ${SERVICE_TCP}:9000\r\n\r\n`)).startsWith('HTTP/1.1 200 ');
    await until('the forward proxy routes both services', both, 30_000, 200);
  }

  async #start(name: string, id: string, body: string, tail: string): Promise<ProxyProcess> {
    const { configFile } = await writeAttestedConfig(this.cp, this.#dir, name, id, body, `telemetry: { accessLog: off }\n${tail}`);
    const p = await startProxyProcess(configFile, 30_000);
    this.#procs.push(p);
    return p;
  }

  /** The ways through `front` (started by front() with `ups` holding `up`): one TunnelPath per kind. */
  paths(frontName: string, front: ProxyProcess, up: Upstream, kinds: readonly PathKind[]): TunnelPath[] {
    const port = (l: string) => front.ports.get(l)!;
    const upgrade = (path: string, host: string) => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`;
    const open = (kind: PathKind, tag: string): Promise<Tunnel> => {
      const label = `${frontName} ${kind} → ${up.name}`;
      if (kind === 'edge' || kind === 'edge-timed') return this.#open(label, port('edge/public'), tag, { tls: true, head: upgrade(`/${up.name}${kind === 'edge' ? '' : '-timed'}/${tag}`, 'localhost'), status: 101 });
      if (kind === 'outbound' || kind === 'outbound-timed') return this.#open(label, port(`outbound/${up.name}${kind === 'outbound' ? '' : '-timed'}`), tag, { head: upgrade(`/${tag}`, 'app'), status: 101 });
      if (kind === 'tcp') return this.#open(label, port(`outbound/${up.name}-tcp`), tag, {});
      if (kind === 'forward') return this.#open(label, port('outbound/mesh'), tag, { head: upgrade(`http://${SERVICE}/${tag}`, SERVICE), status: 101 });
      return this.#open(label, port('outbound/mesh'), tag, { head: `CONNECT ${SERVICE_TCP}:9000 HTTP/1.1\r\nHost: ${SERVICE_TCP}:9000\r\n\r\n`, status: 200 });
    };
    return kinds.map((kind) => ({ label: `${frontName} ${kind} → ${up.name}`, open: (tag: string) => open(kind, tag) }));
  }

  /** Opens a tunnel (after `head` and its answer `status`, if given) and waits for its tag's echo: open end to end. */
  async #open(label: string, port: number, tag: string, o: { tls?: boolean; head?: string; status?: number }): Promise<Tunnel> {
    const raw = net.connect({ host: '127.0.0.1', port });
    raw.on('error', () => undefined);
    const socket = o.tls ? tls.connect({ socket: raw, servername: 'localhost', ca: this.siteCa, ALPNProtocols: ['http/1.1'] }) : raw;
    socket.on('error', () => undefined);
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    await new Promise((r) => socket.once(o.tls ? 'secureConnect' : 'connect', r));
    let got = '';
    socket.on('data', (d: Buffer) => {
      got += d.toString('latin1');
    });
    if (o.head) {
      socket.write(o.head);
      await until(`${label}: the answer to ${tag}`, () => got.includes('\r\n\r\n'), 20_000, 20);
      const end = got.indexOf('\r\n\r\n') + 4;
      if (!got.startsWith(`HTTP/1.1 ${o.status} `)) throw new Error(`${label}: ${tag} was answered ${JSON.stringify(got.slice(0, end))}`);
      got = got.slice(end);
    }
    socket.write(`${tag}\n`);
    await until(`${label}: ${tag} echoed by the app`, () => got.includes(`${tag}\n`) && this.apps.sockets.has(tag), 20_000, 20);
    return { tag, label, socket, raw, closed };
  }

  /** Waits until each tunnel's client and app connections are closed. */
  async closedEverywhere(tunnels: readonly Tunnel[]): Promise<void> {
    await Promise.all(tunnels.map((t) => t.closed));
    await until('every app connection closed', () => tunnels.every((t) => this.apps.closed.has(t.tag)), 20_000, 20);
  }

  async close(): Promise<void> {
    const live = this.#procs.filter((p) => p.child.exitCode === null && p.child.signalCode === null);
    await Promise.all(live.map((p) => p.stop()));
    await this.cp.stop();
    await this.apps.close();
  }
}

/** Every series of GAUGES on `proxy`'s /metrics, by `name{labels}`. */
export async function gauges(proxy: ProxyProcess): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of (await metricsText(proxy.admin)).split('\n')) {
    if (GAUGES.some((g) => line.startsWith(`${g}{`) || line.startsWith(`${g} `))) out.set(line.slice(0, line.lastIndexOf(' ')), Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

/** One series' value (absent: 0). */
export const series = (g: ReadonlyMap<string, number>, name: string, direction: string) => g.get(`${name}{direction="${direction}"}`) ?? 0;

/**
 * Waits (bounded) until no client is left on an edge or outbound listener of `proxies` and each inbound connection is
 * a multiplexed session's (what stays open between tests): the gauges read then are where they stay.
 */
export async function quiet(proxies: readonly ProxyProcess[]): Promise<void> {
  const at = async (p: ProxyProcess) => {
    const g = await gauges(p);
    const active = (d: string) => series(g, 'tessera_connections_active', d);
    return active('edge') === 0 && active('outbound') === 0 && active('inbound') === series(g, 'tessera_mux_sessions_active', 'inbound');
  };
  await until('no connection of the last tunnels left open', async () => (await Promise.all(proxies.map(at))).every(Boolean), 20_000, 50);
}

/**
 * Waits (bounded) until every series of each proxy's gauges is back at its value in `start`, and fails at once if
 * one is below it: a gauge of open things that went under where it started counted an ending twice.
 */
export async function settled(who: readonly { readonly label: string; readonly proxy: ProxyProcess; readonly start: ReadonlyMap<string, number> }[]): Promise<void> {
  let last = 'none read';
  const back = async () => {
    const [off, below]: [string[], string[]] = [[], []];
    for (const w of who) {
      const now = await gauges(w.proxy);
      for (const k of new Set([...now.keys(), ...w.start.keys()])) {
        const [v, s] = [now.get(k) ?? 0, w.start.get(k) ?? 0];
        if (v !== s) (v < s ? below : off).push(`${w.label} ${k} ${v} (start ${s})`);
      }
    }
    if (below.length > 0) throw new Error(`below their start: ${below.join('; ')}`);
    last = off.join('; ');
    return off.length === 0;
  };
  await until('every gauge back at its start', back, 20_000, 50).catch((e: Error) => {
    throw e.message.startsWith('below') ? e : new Error(`${e.message}; still off: ${last}`);
  });
}
