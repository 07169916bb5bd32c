// A mesh of real processes on loopback for the routing tests (DESIGN.md section 11): a control plane on a fixed
// port, replicas of service `api` (a tiny node:http app in the test process behind its own `tessera proxy`, whose
// inbound `service: api` listener is on 127.0.0.(2+i)), a caller proxy with outbound `service:` and `mode:
// http-proxy` listeners, and a keep-alive load generator that records which replica answered each request.
import { readFile, writeFile } from 'node:fs/promises';
import { Agent, createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import { connect as h2connect, createServer as createH2Server, type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from 'node:http2';
import { type AddressInfo, connect as tcpConnect, createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { type RunningControlPlane, startControlPlaneProcess, TD, writeControlPlaneConfig } from './control-plane.js';
import { freePort } from './free-port.js';
import { type ProxyProcess, startProxyProcess, writeAttestedConfig } from './proxy-process.js';
import { until } from './until.js';

export const SERVICE = 'api';
/** The same replicas' HTTP/2 listeners (with `h2: true`). */
export const SERVICE_H2 = 'api-h2';
/** The same replicas' TCP listeners (with `tcp: true`). */
export const SERVICE_TCP = 'api-tcp';
export const API_ID = `spiffe://${TD}/ns/default/sa/api`;
export const WEB_ID = `spiffe://${TD}/ns/default/sa/web`;
/** The header carrying a request's unique id, recorded by every app that sees it. */
export const ID_HEADER = 'x-test-id';

/**
 * One replica's app: answers 200 with its name (body and `x-replica`) after `delayMs` (POST: `postDelayMs`), and
 * records every request id it saw (a POST executed twice shows as a count of 2, or on two apps). HTTP/1.1, or
 * h2c (prior knowledge) for an `http2` inbound listener.
 */
export class ReplicaApp {
  /** The status it answers (500: a broken app behind a healthy proxy). */
  status = 200;
  delayMs = 0;
  postDelayMs = 0;
  /** Request id → times this app saw it. */
  readonly seen = new Map<string, number>();
  /** Requests received so far. */
  received = 0;
  /** Ids of the POSTs received and not answered yet (nor abandoned by the caller). */
  readonly pendingPosts = new Set<string>();
  readonly #server: Server;
  readonly #h2sessions = new Set<Http2Session>();

  private constructor(
    readonly name: string,
    server: Server,
  ) {
    this.#server = server;
  }

  static async start(name: string, protocol: 'http' | 'http2' = 'http'): Promise<ReplicaApp> {
    const server = protocol === 'http2' ? createH2Server() : createServer();
    const app = new ReplicaApp(name, server);
    server.on('request', (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => app.#serve(req, res));
    server.on('session', (s: Http2Session) => {
      app.#h2sessions.add(s);
      s.once('close', () => app.#h2sessions.delete(s));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return app;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  #serve(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void {
    this.received++;
    const id = String(req.headers[ID_HEADER] ?? '');
    if (id) this.seen.set(id, (this.seen.get(id) ?? 0) + 1);
    const post = req.method === 'POST';
    if (post) {
      this.pendingPosts.add(id);
      res.once('close', () => this.pendingPosts.delete(id));
    }
    const delay = post ? this.postDelayMs : this.delayMs;
    req.resume();
    req.on('end', () => {
      const answer = () => {
        if ('stream' in res ? res.stream.destroyed : res.destroyed) return;
        (res as ServerResponse).writeHead(this.status, { 'content-type': 'text/plain', 'x-replica': this.name });
        res.end(this.name);
      };
      if (delay > 0) setTimeout(answer, delay);
      else answer();
    });
  }

  close(): Promise<void> {
    if ('closeAllConnections' in this.#server) (this.#server as ReturnType<typeof createServer>).closeAllConnections();
    for (const s of this.#h2sessions) s.destroy();
    return new Promise((r) => this.#server.close(() => r()));
  }
}

/** A replica's TCP app: writes its name to each connection and closes it (a server-speaks-first protocol). */
export interface TcpReplicaApp {
  readonly name: string;
  readonly port: number;
  /** Connections accepted so far. */
  readonly received: number;
  close(): Promise<void>;
}

export async function startTcpApp(name: string, hold = false): Promise<TcpReplicaApp> {
  const sockets = new Set<Socket>();
  let received = 0;
  const server = createTcpServer((socket) => {
    received++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    // `hold`: the app answers and then keeps the connection open, silent (a pooled database connection at rest).
    if (hold) socket.write(name);
    else socket.end(name);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    name,
    port: (server.address() as AddressInfo).port,
    get received() {
      return received;
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** Everything a TCP connection to 127.0.0.1:`port` receives until the far end closes it (after `send`, if given). */
export function tcpRead(port: number, send?: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(port, '127.0.0.1', () => {
      if (send) socket.write(send);
    });
    const chunks: Buffer[] = [];
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no end within ${timeoutMs} ms: ${Buffer.concat(chunks).toString()}`)));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString()));
    socket.on('error', reject);
  });
}

export interface Replica {
  readonly name: string;
  /** 127.0.0.(2+i): each replica's inbound listener on its own loopback address. */
  readonly host: string;
  readonly app: ReplicaApp;
  readonly proxy: ProxyProcess;
  /** host:port of its inbound listener: the endpoint address the registry and the balancer know it by. */
  readonly address: string;
  /** With `h2: true`: its h2c app behind an `http2` inbound listener registered in SERVICE_H2. */
  readonly h2app?: ReplicaApp;
  /** With `tcp: true`: its TCP app behind a `tcp` inbound listener registered in SERVICE_TCP. */
  readonly tcpApp?: TcpReplicaApp;
}

/** A replica whose config (and join token) is written; its proxy starts when asked (the control plane may be down by then). */
export interface PreparedReplica {
  readonly name: string;
  readonly app: ReplicaApp;
  start(timeoutMs?: number): Promise<Replica>;
}

export interface EndpointView {
  /** The outbound listener whose balancer this is (each listener routing a service has its own). */
  readonly listener: string;
  readonly address: string;
  readonly spiffeId: string;
  readonly state: string;
  readonly ewmaMs: number;
  /** Its failure penalty now: above twice the service's typical latency it is left out of the draw (routing.md). */
  readonly penaltyMs: number;
  readonly outstanding: number;
}

/** A proxy's admin GET /endpoints: service → its endpoints as the balancer sees them. */
export async function endpointsView(adminPort: number): Promise<Record<string, EndpointView[]>> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/endpoints`);
  if (res.status !== 200) throw new Error(`GET /endpoints answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as Record<string, EndpointView[]>;
}

export interface MeshOptions {
  readonly replicas: number;
  /** More YAML for the caller's config (routing:, limits:). */
  readonly clientTail?: string;
  /** More of the caller's outbound listeners (YAML list items), beside its own. */
  readonly clientListeners?: string;
  /** More YAML for every replica proxy's config. */
  readonly replicaTail?: string;
  /** Each replica also serves HTTP/2 (an h2c app) in SERVICE_H2; the caller has an outbound `api-h2` listener. */
  readonly h2?: boolean;
  /** Each replica also serves TCP in SERVICE_TCP; the caller has an outbound `api-tcp` listener. */
  readonly tcp?: boolean;
  /** The TCP apps write their name and keep the connection open without a byte more (they end it by default). */
  readonly tcpHold?: boolean;
  /** More keys of the control plane's `discovery:` map (e.g. `registrationGrace: 1s`). */
  readonly cpDiscovery?: string;
}

/** The caller's listeners: `api` routed to the service, `none` to a service nobody registers, `mesh` a forward proxy. */
const CLIENT_LISTENERS = `outbound:\n  - { name: api, listen: 127.0.0.1:0, service: ${SERVICE} }\n  - { name: none, listen: 127.0.0.1:0, service: none }\n  - { name: mesh, listen: 127.0.0.1:0, mode: http-proxy }\n`;

export class Mesh {
  readonly replicas: Replica[] = [];
  readonly apps: ReplicaApp[] = [];
  readonly tcpApps: TcpReplicaApp[] = [];
  #next = 0;
  #extra: ProxyProcess[] = [];

  private constructor(
    readonly dir: string,
    public cp: RunningControlPlane,
    public client: ProxyProcess,
    readonly accessLogFile: string,
    readonly opts: MeshOptions,
  ) {}

  /**
   * Control plane (policy: web may call api), then the replicas (in parallel), then the caller, which thus learns
   * every endpoint in its first snapshot. `dir` must exist and is the caller's to remove.
   */
  static async start(dir: string, opts: MeshOptions): Promise<Mesh> {
    const cpDir = join(dir, 'cp');
    // api's replicas serve api (theirs by name) and, as listed, the h2 and tcp services.
    const identities = `{ ${SERVICE_H2}: [${API_ID}], ${SERVICE_TCP}: [${API_ID}] }`;
    const cfg = await writeControlPlaneConfig(cpDir, `discovery: { staticFile: ./static-endpoints.yaml, serviceIdentities: ${identities}${opts.cpDiscovery ? `, ${opts.cpDiscovery}` : ''} }`, `127.0.0.1:${await freePort()}`);
    await writeFile(join(cpDir, 'static-endpoints.yaml'), 'services: {}\n');
    await writeFile(
      join(cpDir, 'policies', 'api.yaml'),
      `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow-web }\nspec:\n  selector: ${API_ID}\n  action: ALLOW\n  rules:\n    - from: [${WEB_ID}]\n`,
    );
    const cp = await startControlPlaneProcess(cpDir, cfg);
    const accessLogFile = join(dir, 'client-access.log');
    const mesh = new Mesh(dir, cp, undefined as unknown as ProxyProcess, accessLogFile, opts);
    try {
      await Promise.all(Array.from({ length: opts.replicas }, () => mesh.addReplica()));
      let listeners = CLIENT_LISTENERS + (opts.clientListeners ?? '');
      if (opts.h2) listeners += `  - { name: api-h2, listen: 127.0.0.1:0, service: ${SERVICE_H2}, protocol: http2 }\n`;
      if (opts.tcp) listeners += `  - { name: api-tcp, listen: 127.0.0.1:0, service: ${SERVICE_TCP}, protocol: tcp }\n`;
      const { configFile } = await writeAttestedConfig(cp, dir, 'client', WEB_ID, listeners, `telemetry: { accessLog: ${accessLogFile} }\n${opts.clientTail ?? ''}`);
      mesh.client = await startProxyProcess(configFile, 30_000);
    } catch (e) {
      await mesh.close();
      throw e;
    }
    return mesh;
  }

  port(listener: 'api' | 'none' | 'mesh' | 'api-h2' | 'api-tcp'): number {
    return this.client.ports.get(`outbound/${listener}`)!;
  }

  /**
   * Writes a new replica's app and config (with a join token: the control plane must be up now). `anyPort`: its
   * inbound listener on port 0 (the registration must carry the port it bound).
   */
  async prepareReplica(opts: { anyPort?: boolean } = {}): Promise<PreparedReplica> {
    const i = this.#next++;
    const name = `r${i}`;
    const host = `127.0.0.${2 + i}`;
    const app = await ReplicaApp.start(name);
    this.apps.push(app);
    // A fixed port, as a sidecar's inbound port is (and the address stays the same across a restart).
    const port = opts.anyPort ? 0 : await freePort(host);
    let body = `inbound:\n  - { name: app, listen: ${host}:${port}, forwardTo: 127.0.0.1:${app.port}, service: ${SERVICE} }\n`;
    const h2app = this.opts.h2 ? await ReplicaApp.start(name, 'http2') : undefined;
    if (h2app) {
      this.apps.push(h2app);
      body += `  - { name: h2, listen: ${host}:${await freePort(host)}, forwardTo: 127.0.0.1:${h2app.port}, protocol: http2, service: ${SERVICE_H2} }\n`;
    }
    const tcpApp = this.opts.tcp ? await startTcpApp(name, this.opts.tcpHold) : undefined;
    if (tcpApp) {
      this.tcpApps.push(tcpApp);
      body += `  - { name: tcp, listen: ${host}:${await freePort(host)}, forwardTo: 127.0.0.1:${tcpApp.port}, protocol: tcp, service: ${SERVICE_TCP} }\n`;
    }
    const { configFile } = await writeAttestedConfig(this.cp, this.dir, name, API_ID, body, `telemetry: { accessLog: off }\n${this.opts.replicaTail ?? ''}`);
    return {
      name,
      app,
      start: async (timeoutMs = 30_000) => {
        const proxy = await startProxyProcess(configFile, timeoutMs);
        const replica: Replica = { name, host, app, proxy, address: `${host}:${proxy.ports.get('inbound/app')}`, ...(h2app ? { h2app } : {}), ...(tcpApp ? { tcpApp } : {}) };
        this.replicas.push(replica);
        return replica;
      },
    };
  }

  async addReplica(opts: { anyPort?: boolean } = {}): Promise<Replica> {
    return (await this.prepareReplica(opts)).start();
  }

  /** Another proxy with a control-plane identity, stopped with the mesh. */
  async startProxy(name: string, id: string, body: string, tail?: string): Promise<ProxyProcess> {
    const { configFile } = await writeAttestedConfig(this.cp, this.dir, name, id, body, tail);
    const p = await startProxyProcess(configFile, 30_000);
    this.#extra.push(p);
    return p;
  }

  /**
   * Registration → control plane → the caller's watch: waits (bounded) until every replica's app has answered a
   * request sent through the caller; the error says what the caller answered and what it knew.
   */
  async waitUntilAllAnswer(timeoutMs = 30_000): Promise<void> {
    let last: Outcome[] = [];
    try {
      await until('the caller knows every replica', async () => (await this.endpoints()).length >= this.replicas.length, timeoutMs, 100);
      await until(
        'every replica answers through the caller',
        async () => {
          last = await startLoad({ port: this.port('api'), concurrency: 3, total: 3 * this.apps.length, path: '/warm' }).done;
          return this.replicas.every((r) => r.app.received > 0);
        },
        timeoutMs,
        200,
      );
    } catch (e) {
      const view = await endpointsView(this.client.admin).catch((err: Error) => err.message);
      const answers = last.length === 0 ? 'none sent' : failures(last).slice(0, 5).join('; ') || 'all 200';
      const replica = this.replicas[0]?.proxy.stderr().slice(-1500) ?? '';
      throw new Error(`${(e as Error).message}\nlast answers: ${answers}\ncaller /endpoints: ${JSON.stringify(view)}\ncaller stderr: ${this.client.stderr().slice(-1500)}\n${this.replicas[0]?.name} stderr: ${replica}`);
    }
  }

  /** Replaces the control plane's static endpoints file (watched): `services: { NAME: [ { address, spiffeId } ] }`. */
  async writeStaticEndpoints(services: Record<string, readonly { address: string; spiffeId: string }[]>): Promise<void> {
    const lines = Object.entries(services).flatMap(([name, eps]) => [`  ${name}:`, ...eps.map((e) => `    - { address: "${e.address}", spiffeId: "${e.spiffeId}" }`)]);
    await writeFile(join(this.cp.dir, 'static-endpoints.yaml'), lines.length ? `services:\n${lines.join('\n')}\n` : 'services: {}\n');
  }

  async restartControlPlane(): Promise<void> {
    this.cp = await startControlPlaneProcess(this.cp.dir, this.cp.configFile);
  }

  /** The caller's view of the service one of its outbound listeners routes to (`api-h2` → SERVICE_H2, ...). */
  async endpoints(listener: 'api' | 'api-h2' | 'api-tcp' = 'api'): Promise<EndpointView[]> {
    const service = { api: SERVICE, 'api-h2': SERVICE_H2, 'api-tcp': SERVICE_TCP }[listener];
    return ((await endpointsView(this.client.admin))[service] ?? []).filter((e) => e.listener === listener);
  }

  /**
   * Waits (bounded) until the balancer of the caller's `listener` draws the endpoint of `service` on `host` again:
   * after two failures in a row an endpoint is left out of the draw until its failure penalty has faded (routing.md),
   * so a test that needs a failing endpoint to take attempts waits for its penalty to fall below half of every other
   * endpoint's latency estimate (which is at most about twice the typical latency it is compared with).
   */
  async untilDrawn(service: string, listener: string, host: string, timeoutMs = 30_000): Promise<void> {
    let last: EndpointView[] = [];
    await until(
      `${listener} draws ${service}'s endpoint on ${host} again`,
      async () => {
        last = ((await endpointsView(this.client.admin))[service] ?? []).filter((e) => e.listener === listener);
        const target = last.find((e) => e.address.startsWith(`${host}:`));
        return target !== undefined && last.every((e) => e === target || target.penaltyMs * 2 < e.ewmaMs);
      },
      timeoutMs,
      100,
    ).catch((e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify(last.map((v) => [v.address, v.state, v.ewmaMs, v.penaltyMs]))}`);
    });
  }

  /** The caller's access-log records of requests to `path`. */
  async accessLog(path: string): Promise<Record<string, unknown>[]> {
    const text = await readFile(this.accessLogFile, 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((r) => r.direction === 'outbound' && r.path === path);
  }

  async close(): Promise<void> {
    const procs = [this.client, ...this.#extra, ...this.replicas.map((r) => r.proxy)].filter((p): p is ProxyProcess => p !== undefined && p.child.exitCode === null && p.child.signalCode === null);
    await Promise.all(procs.map((p) => p.stop()));
    await this.cp.stop();
    await Promise.all([...this.apps, ...this.tcpApps].map((a) => a.close()));
  }
}

export interface Outcome {
  readonly id: string;
  readonly method: string;
  /** 0: no response (connection error or timeout; see `error`). */
  readonly status: number;
  /** The replica that answered (its `x-replica`), '' for a local answer of the proxy. */
  readonly replica: string;
  /** `x-tessera-error` of a local answer. */
  readonly tesseraError?: string;
  readonly error?: string;
  readonly startMs: number;
  readonly endMs: number;
}

export interface LoadOptions {
  readonly port: number;
  /** Requests in flight at once, each worker on its own keep-alive connection. */
  readonly concurrency: number;
  /** Stop after this many requests (all workers together); absent: until stop(). */
  readonly total?: number;
  readonly method?: 'GET' | 'POST';
  readonly path?: string;
  /** Prefix of the request ids (unique per load in one test). */
  readonly idPrefix?: string;
  readonly timeoutMs?: number;
  /** Paced: each worker starts a request at most this often (a fixed rate), not back to back (CPU spent on load). */
  readonly intervalMs?: number;
}

export interface RunningLoad {
  /** What finished so far (grows while the load runs). */
  readonly outcomes: readonly Outcome[];
  /** Stops issuing requests and resolves when the ones in flight finished. */
  stop(): Promise<Outcome[]>;
  /** Resolves when `total` requests finished (or after stop()). */
  readonly done: Promise<Outcome[]>;
}

let loadSeq = 0;

/** Keep-alive HTTP/1.1 clients (node:http Agent) sending requests back to back, or paced (`intervalMs`). */
export function startLoad(o: LoadOptions): RunningLoad {
  const agent = new Agent({ keepAlive: true, maxSockets: o.concurrency });
  const outcomes: Outcome[] = [];
  const prefix = o.idPrefix ?? `load${loadSeq++}`;
  const method = o.method ?? 'GET';
  let issued = 0;
  let stopped = false;
  const worker = async () => {
    while (!stopped && (o.total === undefined || issued < o.total)) {
      const id = `${prefix}-${method}-${issued++}`;
      const startMs = Date.now();
      outcomes.push(await send(agent, o, method, id));
      const pause = (o.intervalMs ?? 0) - (Date.now() - startMs);
      if (pause > 0 && !stopped) await new Promise((r) => setTimeout(r, pause));
    }
  };
  const done = Promise.all(Array.from({ length: o.concurrency }, worker)).then(() => {
    agent.destroy();
    return outcomes;
  });
  return {
    outcomes,
    done,
    stop() {
      stopped = true;
      return done;
    },
  };
}

function send(agent: Agent, o: LoadOptions, method: string, id: string): Promise<Outcome> {
  const startMs = Date.now();
  const body = method === 'POST' ? JSON.stringify({ id }) : undefined;
  return new Promise((resolve) => {
    const fail = (error: string) => resolve({ id, method, status: 0, replica: '', error, startMs, endMs: Date.now() });
    const req = request(
      {
        host: '127.0.0.1',
        port: o.port,
        method,
        path: o.path ?? '/work',
        agent,
        timeout: o.timeoutMs ?? 10_000,
        headers: { [ID_HEADER]: id, ...(body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}) },
      },
      (res) => {
        res.resume();
        res.on('error', (e) => fail(`response: ${e.message}`));
        res.on('end', () => {
          const te = res.headers['x-tessera-error'];
          resolve({ id, method, status: res.statusCode!, replica: String(res.headers['x-replica'] ?? ''), ...(te ? { tesseraError: String(te) } : {}), startMs, endMs: Date.now() });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', (e) => fail(e.message));
    req.end(body);
  });
}

/** `total` GETs as HTTP/2 streams multiplexed over ONE h2c connection, `concurrency` at a time. */
export async function h2Load(o: { port: number; concurrency: number; total: number; path: string }): Promise<Outcome[]> {
  const session = h2connect(`http://127.0.0.1:${o.port}`);
  session.on('error', () => undefined); // each stream reports its own failure
  const outcomes: Outcome[] = [];
  let issued = 0;
  const one = (id: string) =>
    new Promise<Outcome>((resolve) => {
      const startMs = Date.now();
      const stream = session.request({ ':method': 'GET', ':path': o.path, [ID_HEADER]: id });
      let status = 0;
      let replica = '';
      let te: string | undefined;
      stream.on('response', (h) => {
        status = Number(h[':status']);
        replica = String(h['x-replica'] ?? '');
        te = h['x-tessera-error'] === undefined ? undefined : String(h['x-tessera-error']);
      });
      stream.resume();
      stream.on('end', () => resolve({ id, method: 'GET', status, replica, ...(te ? { tesseraError: te } : {}), startMs, endMs: Date.now() }));
      stream.on('error', (e) => resolve({ id, method: 'GET', status: 0, replica: '', error: e.message, startMs, endMs: Date.now() }));
      stream.setTimeout(10_000, () => stream.close());
    });
  const worker = async () => {
    while (issued < o.total) outcomes.push(await one(`h2-${issued++}`));
  };
  try {
    await Promise.all(Array.from({ length: o.concurrency }, worker));
  } finally {
    session.close();
  }
  return outcomes;
}

/** Share of the successful outcomes each named replica answered. */
export function shares(outcomes: readonly Outcome[], names: readonly string[]): Record<string, number> {
  const ok = outcomes.filter((x) => x.status === 200);
  return Object.fromEntries(names.map((n) => [n, ok.filter((x) => x.replica === n).length / Math.max(1, ok.length)]));
}

/**
 * Per replica: its share, and the client-observed latency (mean and p99, ms) of its answers: when a share is off,
 * this says whether that replica was really slower (which a latency-aware balancer must avoid) or not.
 */
export function balanceReport(outcomes: readonly Outcome[], names: readonly string[]): string {
  const s = shares(outcomes, names);
  return names
    .map((n) => {
      const ms = outcomes
        .filter((x) => x.status === 200 && x.replica === n)
        .map((x) => x.endMs - x.startMs)
        .sort((a, b) => a - b);
      const mean = ms.reduce((a, b) => a + b, 0) / Math.max(1, ms.length);
      return `${n} ${(100 * s[n]!).toFixed(1)} % (mean ${mean.toFixed(1)} ms, p99 ${ms[Math.floor(ms.length * 0.99)] ?? '-'} ms)`;
    })
    .join(', ');
}

/** Outcomes that are not a 200 from a replica, summarized for an assertion message. */
export function failures(outcomes: readonly Outcome[]): string[] {
  return outcomes.filter((x) => x.status !== 200 || !x.replica).map((x) => `${x.id}: ${x.status} ${x.replica || x.tesseraError || ''} ${x.error ?? ''} at +${x.startMs}`);
}
