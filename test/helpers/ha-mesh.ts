// Control-plane replicas on one real PostgreSQL for the HA integration tests (issue 20, DESIGN.md section 12): each
// replica is a real `tessera control-plane` process with its own dir, data dir, fixed gRPC port (a killed replica
// comes back where its proxies look for it) and `store.replica` name, all on the same database (urlFile: the URL
// holds a password). Also: proxies listing every replica (preferred first), a keep-alive request loop that keeps
// every outcome, and reads of what each replica and the database hold.
import { mkdir, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import pg from 'pg';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { createJoinToken, type RunningControlPlane, startControlPlaneProcess, TD } from './control-plane.js';
import { freePort } from './free-port.js';
import { type ProxyProcess, startProxyProcess } from './proxy-process.js';

export const API_ID = `spiffe://${TD}/ns/default/sa/api`;
export const WEB_ID = `spiffe://${TD}/ns/default/sa/web`;

/** web may call api: every replica holds it (policies are files per replica, not shared state). */
export const ALLOW_WEB_TO_API = `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow-web }\nspec:\n  selector: ${API_ID}\n  action: ALLOW\n  rules:\n    - from: [${WEB_ID}]\n`;

export interface HaReplica extends RunningControlPlane {
  /** Its `store.replica` name (r1, r2, …). */
  readonly name: string;
}

export interface HaReplicaSpec {
  readonly dir: string;
  readonly name: string;
  readonly dbUrl: string;
  /** More YAML for the config (svid:, ca:). */
  readonly extra?: string;
  /** More keys for the `store:` mapping, flow style (`leaderLease: 3s`). */
  readonly store?: string;
}

/** Writes `<dir>/cp.yaml` (fixed port, the database URL in `<dir>/db-url`, 0600) and the policy; returns the config file. */
export async function writeHaReplicaConfig(spec: HaReplicaSpec): Promise<string> {
  const { dir } = spec;
  await mkdir(join(dir, 'policies'), { recursive: true });
  await writeFile(join(dir, 'policies', 'api.yaml'), ALLOW_WEB_TO_API);
  await writeFile(join(dir, 'db-url'), `${spec.dbUrl}\n`, { mode: 0o600 });
  const file = join(dir, 'cp.yaml');
  await writeFile(
    file,
    [
      `trustDomain: ${TD}`,
      'dataDir: ./data',
      `listen: 127.0.0.1:${await freePort()}`,
      'adminListen: 127.0.0.1:0',
      'policies: { dir: ./policies }',
      'logLevel: info',
      // JSON is YAML: any replica name (tests use hostile ones) arrives as written.
      `store: { kind: postgres, urlFile: ./db-url, replica: ${JSON.stringify(spec.name)}, maxConnections: 4${spec.store ? `, ${spec.store}` : ''} }`,
      spec.extra ?? '',
      '',
    ].join('\n'),
  );
  return file;
}

/** Starts (or restarts, on the same config and port) one replica and waits for its ready line. */
export async function startHaReplica(dir: string, name: string, configFile: string): Promise<HaReplica> {
  return Object.assign(await startControlPlaneProcess(dir, configFile, process.env, 30_000), { name });
}

/**
 * `n` replicas in `<root>/r1`…`rn` on the database at `dbUrl`, started together (they race to create the CA);
 * named r1…rn unless `names` says otherwise.
 */
export async function startHaReplicas(root: string, dbUrl: string, n: number, opts: { extra?: string; store?: string; names?: readonly string[] } = {}): Promise<HaReplica[]> {
  const specs = Array.from({ length: n }, (_, i) => ({ dir: join(root, `r${i + 1}`), name: opts.names?.[i] ?? `r${i + 1}`, dbUrl, ...(opts.extra ? { extra: opts.extra } : {}), ...(opts.store ? { store: opts.store } : {}) }));
  const files = await Promise.all(specs.map((s) => writeHaReplicaConfig(s)));
  return Promise.all(specs.map((s, i) => startHaReplica(s.dir, s.name, files[i]!)));
}

export interface CaStatus {
  readonly signingAuthority: string;
  /** The authority the replica's own SVID chains to. */
  readonly servedAuthority?: string | null;
  readonly bundleFingerprints: readonly string[];
  readonly authorities: readonly { readonly id: string; readonly state: string; readonly rootFingerprint: string; readonly liveSvids: number }[];
}

/** A replica's `GET /v1/ca` over its admin.sock (what `tessera ca status --json` prints). */
export function caStatus(r: { readonly dataDir: string }): Promise<CaStatus> {
  return adminRequest<CaStatus>(r.dataDir, 'GET', '/v1/ca', undefined, 10_000);
}

/** The authorities as `id:state` in order: equal strings = the same CA state. */
export function caShape(s: CaStatus): string {
  return s.authorities.map((a) => `${a.id}:${a.state}`).join(' ');
}

/**
 * One query as the Tessera role on the test database (inspection and the injection checks): on a connection of its
 * own (a URL), or on a test's open client (a poll every 100 ms then costs no connection and password exchange each).
 */
export async function dbQuery<R extends pg.QueryResultRow = Record<string, unknown>>(url: string | pg.ClientBase, sql: string, params: unknown[] = []): Promise<R[]> {
  if (typeof url !== 'string') return (await url.query<R>(sql, params)).rows;
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await c.connect();
  try {
    return (await c.query<R>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/** The committed CA: version and `id:state` of each authority, as the database holds it. */
export async function dbCaState(url: string | pg.ClientBase): Promise<{ version: number; shape: string; active: number }> {
  const row = (await dbQuery<{ version: string; state_json: string }>(url, 'SELECT version, state_json FROM ca_state WHERE id = 1'))[0];
  if (!row) throw new Error('no ca_state row');
  const state = JSON.parse(row.state_json) as { authorities: { id: string; state: string }[] };
  return { version: Number(row.version), shape: state.authorities.map((a) => `${a.id}:${a.state}`).join(' '), active: state.authorities.filter((a) => a.state === 'active').length };
}

/** The replica name holding the leader term (the advisory-lock leader), or undefined. */
export async function leaderName(url: string | pg.ClientBase): Promise<string | undefined> {
  return (await dbQuery<{ holder: string }>(url, 'SELECT holder FROM leader_term WHERE id = 1'))[0]?.holder;
}

/**
 * A proxy attested with a join token minted on `prefer` (the first address it lists), failing over to the others
 * (failback probed every second); its bootstrap bundle is `prefer`'s bundle.pem.
 */
export async function startHaProxy(dir: string, name: string, id: string, prefer: HaReplica, others: readonly HaReplica[], body: string): Promise<ProxyProcess> {
  await writeFile(join(dir, `${name}.token`), await createJoinToken(prefer.dataDir, id, 600_000), { mode: 0o600 });
  const file = join(dir, `${name}.yaml`);
  const addresses = [prefer, ...others].map((r) => r.grpc).join(', ');
  await writeFile(
    file,
    `identity:\n  controlPlane:\n    addresses: [${addresses}]\n    failbackInterval: 1s\n    bundleFile: ${join(prefer.dataDir, 'bundle.pem')}\n    joinTokenFile: ${name}.token\n${body}admin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n`,
  );
  return startProxyProcess(file, 30_000);
}

/** What a proxy's admin /certs says about its SVID and bundle. */
export async function proxyCerts(p: ProxyProcess): Promise<{ serial: string; notAfter: string; bundles: { trustDomain: string; fingerprints: string[] }[] }> {
  return (await fetch(`http://127.0.0.1:${p.admin}/certs`)).json() as Promise<{ serial: string; notAfter: string; bundles: { trustDomain: string; fingerprints: string[] }[] }>;
}

/** The control-plane address a proxy currently uses (tessera_control_plane_current == 1). */
export async function currentControlPlane(p: ProxyProcess): Promise<string | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${p.admin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('tessera_control_plane_current{') && l.endsWith(' 1'));
  return line ? /address="([^"]+)"/.exec(line)?.[1] : undefined;
}

export interface Load {
  readonly failures: string[];
  readonly ok: number;
  stop(): Promise<void>;
}

/** GETs one after another over keep-alive connections to 127.0.0.1:`port` until stopped (at most `maxMs`). */
export function keepAliveLoad(port: number, maxMs = 120_000): Load {
  const agent = new Agent({ keepAlive: true, maxSockets: 2 });
  const failures: string[] = [];
  let ok = 0;
  let running = true;
  const get = () =>
    new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/hello', agent, timeout: 10_000 }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end();
    });
  const deadline = Date.now() + maxMs;
  const done = (async () => {
    while (running && Date.now() < deadline) {
      try {
        const status = await get();
        if (status === 200) ok++;
        else failures.push(`status ${status}`);
      } catch (e) {
        failures.push((e as Error).message);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return {
    failures,
    get ok() {
      return ok;
    },
    async stop() {
      running = false;
      await done;
      agent.destroy();
    },
  };
}
