// A small kube-apiserver on loopback for discovery and attestation tests (no cluster is reachable here): two
// collections (Pods, EndpointSlices) answered over real HTTPS with the cluster CA and a bearer check, paginated lists,
// watches streamed as chunked JSON lines from a resourceVersion, bookmarks, and history compaction (410 Gone), as the
// real one does; the service-account issuer's OIDC discovery document and JWKS; list and watch calls that fail with
// 503 (an API server unwell, or a cluster-wide list timing out) while the rest answers; and a server that can go
// away (its port refuses connections) and come back on the same port; TokenReview answered as a test says.
import { writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { TestCa } from './test-ca.js';

export type Obj = { metadata: { name: string; namespace: string; resourceVersion?: string; [k: string]: unknown }; [k: string]: unknown };
export type Kind = 'endpointslices' | 'pods';

/** A tiny kube-apiserver: two collections, a resourceVersion counter, an event history that can be compacted. */
export class FakeApiServer {
  rv = 100;
  compactedBelow = 0;
  readonly objects: Record<Kind, Map<string, Obj>> = { endpointslices: new Map(), pods: new Map() };
  readonly history: { rv: number; kind: Kind; type: string; object: Obj }[] = [];
  readonly watchers = new Set<{ kind: Kind; ns: string | undefined; res: ServerResponse }>();
  readonly requests: { path: string; query: URLSearchParams; auth: string | undefined }[] = [];
  goneAs: 'event' | 'status' = 'event';
  /** While true, list and watch calls of the two collections answer 503 (the server is up, its lists fail). */
  listsDown = false;
  token: string;
  /** The service-account issuer, named by /.well-known/openid-configuration. */
  issuer = 'https://kubernetes.default.svc.cluster.local';
  /** The public keys served at /openid/v1/jwks (each with its kid): push one to rotate the cluster's signing key. */
  readonly jwks: Record<string, unknown>[] = [];
  /** POST tokenreviews: the HTTP status and body for the token under review (unset: 404, as before). */
  tokenReview: ((token: string) => { status: number; body: unknown }) | undefined;

  constructor(token: string) {
    this.token = token;
  }

  put(kind: Kind, o: Obj, quiet = false): void {
    const key = `${o.metadata.namespace}/${o.metadata.name}`;
    const type = this.objects[kind].has(key) ? 'MODIFIED' : 'ADDED';
    const object = { ...o, metadata: { ...o.metadata, resourceVersion: String(++this.rv) } };
    this.objects[kind].set(key, object);
    if (!quiet) this.emit(kind, type, object);
  }

  remove(kind: Kind, ns: string, name: string, quiet = false): void {
    const o = this.objects[kind].get(`${ns}/${name}`);
    if (!o) return;
    this.objects[kind].delete(`${ns}/${name}`);
    if (!quiet) this.emit(kind, 'DELETED', { ...o, metadata: { ...o.metadata, resourceVersion: String(++this.rv) } });
  }

  /** The server forgets its history (etcd compaction) and ends every watch; watchers must list again. */
  compactAndCut(): void {
    this.compactedBelow = this.rv;
    this.history.length = 0;
    this.cut();
  }

  /** Ends every watch, as kube-apiserver does at timeoutSeconds. */
  cut(): void {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
  }

  private emit(kind: Kind, type: string, object: Obj): void {
    this.history.push({ rv: this.rv, kind, type, object });
    for (const w of this.watchers) if (w.kind === kind && (!w.ns || w.ns === object.metadata.namespace)) w.res.write(`${JSON.stringify({ type, object })}\n`);
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'https://x');
    this.requests.push({ path: url.pathname, query: url.searchParams, auth: req.headers.authorization });
    const json = (status: number, body: unknown): void => void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (req.headers.authorization !== `Bearer ${this.token}`) return void json(401, { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
    if (req.method === 'GET' && url.pathname === '/.well-known/openid-configuration') {
      return void json(200, { issuer: this.issuer, jwks_uri: `https://${req.headers.host}/openid/v1/jwks`, response_types_supported: ['id_token'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256', 'ES256'] });
    }
    if (req.method === 'GET' && url.pathname === '/openid/v1/jwks') return void json(200, { keys: this.jwks });
    const review = this.tokenReview;
    if (req.method === 'POST' && url.pathname === '/apis/authentication.k8s.io/v1/tokenreviews' && review) {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const answer = review((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { spec: { token: string } }).spec.token);
        json(answer.status, answer.body);
      });
      return;
    }
    const m = /^\/(?:api\/v1|apis\/discovery\.k8s\.io\/v1)(?:\/namespaces\/([a-z0-9-]+))?\/(pods|endpointslices)$/.exec(url.pathname);
    if (!m || req.method !== 'GET') return void json(404, { kind: 'Status', code: 404, message: 'not found' });
    if (this.listsDown) return void json(503, { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'the server is currently unable to handle the request', reason: 'ServiceUnavailable', code: 503 });
    const ns = m[1];
    const kind = m[2] as Kind;
    const selector = url.searchParams.get('labelSelector');
    const visible = (o: Obj) => (!ns || o.metadata.namespace === ns) && (!selector || Object.hasOwn((o.metadata['labels'] as Record<string, string>) ?? {}, selector));
    if (url.searchParams.get('watch') === '1' || url.searchParams.get('watch') === 'true') {
      const from = Number(url.searchParams.get('resourceVersion') ?? '0');
      if (from < this.compactedBelow) {
        const gone = { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: `too old resource version: ${from} (${this.compactedBelow})`, reason: 'Expired', code: 410 };
        if (this.goneAs === 'status') return void json(410, gone);
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end(`${JSON.stringify({ type: 'ERROR', object: gone })}\n`);
      }
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      for (const h of this.history) if (h.kind === kind && h.rv > from && visible(h.object)) res.write(`${JSON.stringify({ type: h.type, object: h.object })}\n`);
      // A bookmark, as kube-apiserver sends with allowWatchBookmarks: only the resourceVersion moves.
      if (url.searchParams.get('allowWatchBookmarks') === 'true') res.write(`${JSON.stringify({ type: 'BOOKMARK', object: { kind: kind === 'pods' ? 'Pod' : 'EndpointSlice', metadata: { resourceVersion: String(this.rv) } } })}\n`);
      const w = { kind, ns, res };
      this.watchers.add(w);
      res.on('close', () => this.watchers.delete(w));
      return;
    }
    const all = [...this.objects[kind].values()].filter(visible).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    const limit = Number(url.searchParams.get('limit') ?? '0') || all.length;
    const start = Number(url.searchParams.get('continue') ?? '0');
    const page = all.slice(start, start + limit);
    const more = start + limit < all.length;
    json(200, { kind: kind === 'pods' ? 'PodList' : 'EndpointSliceList', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv), ...(more ? { continue: String(start + limit) } : {}) }, items: page });
  }

  lists(kind: Kind): number {
    return this.requests.filter((r) => r.path.endsWith(`/${kind}`) && !r.query.has('watch') && !r.query.has('continue')).length;
  }

  /** How many times the JWKS was read. */
  jwksReads(): number {
    return this.requests.filter((r) => r.path === '/openid/v1/jwks').length;
  }
}

export function pod(ns: string, name: string, sa: string, annotations: Record<string, string> = { 'tessera.dev/injected': '0.1.0' }): Obj {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, uid: `${name}-uid`, annotations }, spec: { serviceAccountName: sa, containers: [{ name: 'app', image: 'app:1' }] }, status: { phase: 'Running' } };
}

export function slice(ns: string, name: string, svc: string, endpoints: { ip: string; pod: string; ready?: boolean; terminating?: boolean; zone?: string }[], port = { name: 'http', port: 8080, protocol: 'TCP' } as Record<string, unknown>): Obj {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: ns, labels: { 'kubernetes.io/service-name': svc, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' } },
    addressType: 'IPv4',
    ports: [port],
    endpoints: endpoints.map((e) => ({ addresses: [e.ip], conditions: { ready: e.ready ?? true, serving: e.ready ?? true, terminating: e.terminating ?? false }, nodeName: 'node-1', targetRef: { kind: 'Pod', namespace: ns, name: e.pod, uid: `${e.pod}-uid` }, ...(e.zone ? { zone: e.zone } : {}) })),
  };
}

export interface FakeKubeApi {
  readonly base: string;
  use(api: FakeApiServer): void;
  /** The API server goes away: open connections are cut and the port refuses new ones. */
  down(): Promise<void>;
  /** It comes back on the same port. */
  up(): Promise<void>;
  close(): void;
}

/**
 * The server on 127.0.0.1 (certificate for "localhost"), its CA written to `<dir>/ca.crt`; `api` may be swapped per
 * test. `port`: a fixed one (test/helpers/free-port.ts) for a server that goes down and comes back.
 */
export async function startFakeKubeApi(dir: string, first: FakeApiServer, opts: { readonly port?: number } = {}): Promise<FakeKubeApi> {
  const clusterCa = await TestCa.create({ trustDomain: 'cluster.test', rootName: 'CN=Test cluster CA' });
  const serving = await clusterCa.mintSvid('spiffe://cluster.test/apiserver', { dnsSans: ['localhost'] });
  await writeFile(join(dir, 'ca.crt'), clusterCa.bundlePem());
  let api = first;
  const server = createServer({ cert: serving.chainPem, key: serving.keyPem }, (req, res) => api.handle(req, res));
  const listen = (port: number) => new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  await listen(opts.port ?? 0);
  const port = (server.address() as AddressInfo).port;
  return {
    base: `https://localhost:${port}`,
    use(next) {
      api = next;
    },
    async down() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
    up: () => listen(port),
    close() {
      server.closeAllConnections();
      server.close();
    },
  };
}
