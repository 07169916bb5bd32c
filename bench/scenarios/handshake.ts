// Scenario `handshake`: server (and client) CPU per mTLS handshake — full vs resumed, ECDSA vs RSA, cached vs
// per-connection SecureContext, key-exchange group (X25519 vs X25519MLKEM768) — from a Node client and from
// `openssl s_time`, beside an nginx listener and the crypto floor of this machine.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { SupervisedProcess } from '../../shared-io/process-supervisor.js';
import { type BenchContext, type RoundVariant, runRounds, scenarioResult, withBenchContext } from '../harness/bench-context.js';
import { CLIENT_ID, type LeafFiles, SERVER_DNS, SERVER_ID } from '../harness/bench-pki.js';
import { type CryptoRates, nodeCryptoRates, runOpensslSpeed } from '../harness/crypto-floor.js';
import { measureWindow } from '../harness/measure-window.js';
import { findBinary } from '../harness/peer-binaries.js';
import { freePorts } from '../harness/ports.js';
import type { BenchScenario, Measurement, ScenarioOptions, ScenarioResult } from '../harness/scenario.js';
import { nginxHandshakeServerConfig } from '../peers/nginx-config.js';
import { allowPolicyYaml, tesseraServerProxyConfig } from '../peers/tessera-config.js';
import { type AppHandle, startApp, tesseraCommand } from '../peers/topology.js';
import { sTimeVariant } from './handshake-s-time.js';
import { floorMeasurement, handshakeHeadlines, handshakeSummary } from './handshake-summary.js';
import { shortReason } from './mesh.js';

const SERVER_JS = fileURLToPath(new URL('../harness/children/tls-handshake-server.js', import.meta.url));
const CLIENT_JS = fileURLToPath(new URL('../harness/children/tls-handshake-client.js', import.meta.url));

export interface HandshakeVariant {
  readonly name: string;
  /** `tessera`: the server side of a Tessera pair (`tessera proxy`, inbound listener in front of the app). */
  readonly server: 'node' | 'nginx' | 'tessera';
  readonly resume: boolean;
  readonly algorithm: 'ec-p256' | 'rsa-2048';
  readonly perConnectionContext: boolean;
  /** Server-side group restriction (node); absent = the default list (Node 24: X25519MLKEM768 first). */
  readonly ecdhCurve?: string;
  /** The Node client's groups, preferred first; absent = Node's default (key shares for X25519MLKEM768 and X25519). */
  readonly clientGroups?: string;
  /** `transport.tlsGroups` of the Tessera server side; absent = its default (X25519 first). */
  readonly tlsGroups?: readonly string[];
  /** false: the Node client closes right after the handshake (no request: the handshake's own cost). */
  readonly request?: boolean;
  /** The client: the Node child (default) or `openssl s_time` (system OpenSSL, one connection at a time). */
  readonly client?: 'node' | 's_time';
}

export const NODE_FULL = 'node full, ECDSA';
export const NGINX_FULL = 'nginx full, ECDSA';
export const TESSERA_FULL = 'tessera server side full, ECDSA';
export const TESSERA_RESUMED = 'tessera server side resumed, ECDSA';
export const TESSERA_FULL_HYBRID = 'tessera server side full, ECDSA, tlsGroups X25519MLKEM768 first';

/** What a Tessera proxy's upstream side offers by default (tls-contexts.ts DEFAULT_TLS_GROUPS). */
const TESSERA_CLIENT_GROUPS = 'X25519:X25519MLKEM768:P-256:P-384';
const HYBRID_FIRST = ['X25519MLKEM768', 'X25519', 'P-256', 'P-384'];

export const HANDSHAKE_VARIANTS: readonly HandshakeVariant[] = [
  { name: NODE_FULL, server: 'node', resume: false, algorithm: 'ec-p256', perConnectionContext: false },
  { name: 'node full, ECDSA, X25519 only', server: 'node', resume: false, algorithm: 'ec-p256', perConnectionContext: false, ecdhCurve: 'X25519', clientGroups: 'X25519' },
  { name: 'node resumed, ECDSA', server: 'node', resume: true, algorithm: 'ec-p256', perConnectionContext: false },
  { name: 'node full, RSA-2048', server: 'node', resume: false, algorithm: 'rsa-2048', perConnectionContext: false },
  { name: 'node full, ECDSA, SecureContext per connection', server: 'node', resume: false, algorithm: 'ec-p256', perConnectionContext: true },
  { name: NGINX_FULL, server: 'nginx', resume: false, algorithm: 'ec-p256', perConnectionContext: false },
  { name: TESSERA_FULL, server: 'tessera', resume: false, algorithm: 'ec-p256', perConnectionContext: false, clientGroups: TESSERA_CLIENT_GROUPS },
  { name: TESSERA_FULL_HYBRID, server: 'tessera', resume: false, algorithm: 'ec-p256', perConnectionContext: false, clientGroups: HYBRID_FIRST.join(':'), tlsGroups: HYBRID_FIRST },
  { name: TESSERA_RESUMED, server: 'tessera', resume: true, algorithm: 'ec-p256', perConnectionContext: false, clientGroups: TESSERA_CLIENT_GROUPS },
  { name: 'node full, handshake only', server: 'node', resume: false, algorithm: 'ec-p256', perConnectionContext: false, clientGroups: TESSERA_CLIENT_GROUPS, ecdhCurve: TESSERA_CLIENT_GROUPS, request: false },
  { name: 'tessera server side full, handshake only', server: 'tessera', resume: false, algorithm: 'ec-p256', perConnectionContext: false, clientGroups: TESSERA_CLIENT_GROUPS, request: false },
  { name: 'node full, openssl s_time', server: 'node', resume: false, algorithm: 'ec-p256', perConnectionContext: false, client: 's_time' },
  { name: 'node resumed, openssl s_time', server: 'node', resume: true, algorithm: 'ec-p256', perConnectionContext: false, client: 's_time' },
  { name: 'tessera server side full, openssl s_time', server: 'tessera', resume: false, algorithm: 'ec-p256', perConnectionContext: false, client: 's_time' },
  { name: 'tessera server side resumed, openssl s_time', server: 'tessera', resume: true, algorithm: 'ec-p256', perConnectionContext: false, client: 's_time' },
];

interface Tally {
  readonly handshakes: number;
  readonly resumed: number;
  readonly errors: number;
  readonly groups: Record<string, number>;
  readonly protocols: Record<string, number>;
  readonly errorSample: string | null;
}

/** Talks to a tls-handshake-client child: one `{"runMs"}` line in, one result line out. */
function clientDriver(client: SupervisedProcess): (runMs: number) => Promise<Tally> {
  const rl = createInterface({ input: client.child.stdout! });
  const waiting: ((t: Tally) => void)[] = [];
  rl.on('line', (line) => waiting.shift()?.(JSON.parse(line) as Tally));
  return (runMs) =>
    new Promise((resolve) => {
      waiting.push(resolve);
      client.child.stdin!.write(`${JSON.stringify({ runMs })}\n`);
    });
}

const top = (counts: Record<string, number>) => Object.entries(counts).sort((a, b) => b[1] - a[1])[0]?.[0] ?? null;

async function startServer(ctx: BenchContext, v: HandshakeVariant, leaf: LeafFiles, slug: string, app: () => Promise<AppHandle>): Promise<{ server: SupervisedProcess; port: number }> {
  if (v.server === 'tessera') return startTesseraServer(ctx, v, leaf, slug, (await app()).port);
  if (v.server === 'nginx') {
    const [port] = await freePorts(1);
    const dir = join(ctx.opts.workDir, slug);
    await mkdir(dir, { recursive: true });
    const conf = join(dir, 'nginx.conf');
    await writeFile(conf, nginxHandshakeServerConfig({ prefix: dir, listenPort: port!, chainFile: leaf.chainFile, keyFile: leaf.keyFile, rootFile: ctx.pki.rootFile }));
    const server = await ctx.group.start({ name: `${slug}-server`, command: ctx.binaries.nginx!, args: ['-e', join(dir, 'error.log'), '-p', dir, '-c', conf, '-g', 'daemon off;'], ready: { port: port! } });
    return { server, port: port! };
  }
  const spec = { certFile: leaf.chainFile, keyFile: leaf.keyFile, caFile: ctx.pki.rootFile, perConnectionContext: v.perConnectionContext, ...(v.ecdhCurve ? { ecdhCurve: v.ecdhCurve } : {}) };
  const server = await ctx.group.start({ name: `${slug}-server`, command: process.execPath, args: [SERVER_JS, JSON.stringify(spec)], ready: { line: /^ready \d+/ } });
  return { server, port: Number(/^ready (\d+)/.exec(server.readyLine ?? '')?.[1]) };
}

/**
 * The server side of a Tessera pair alone (`tessera proxy`, inbound listener in front of the app, policy
 * authorization, access log off): the client proxy of a pair has no part in these handshakes.
 */
async function startTesseraServer(ctx: BenchContext, v: HandshakeVariant, leaf: LeafFiles, slug: string, appPort: number): Promise<{ server: SupervisedProcess; port: number }> {
  const [port, adminPort] = await freePorts(2);
  const dir = join(ctx.opts.workDir, slug);
  await mkdir(join(dir, 'policies'), { recursive: true });
  await writeFile(join(dir, 'policies', 'allow-client.yaml'), allowPolicyYaml(SERVER_ID, CLIENT_ID));
  const conf = tesseraServerProxyConfig({
    identity: { certFile: leaf.chainFile, keyFile: leaf.keyFile, bundleFile: ctx.pki.rootFile },
    listenPort: port!,
    appPort,
    adminPort: adminPort!,
    authorization: { policiesDir: join(dir, 'policies') },
    accessLog: 'off',
  });
  const groups = v.tlsGroups ? `transport:\n  tlsGroups: [${v.tlsGroups.join(', ')}]\n` : '';
  await writeFile(join(dir, 'server.yaml'), `${conf}${groups}`);
  const server = await ctx.group.start({ name: `${slug}-tessera`, ...tesseraCommand(ctx.env.tesseraCli, 'proxy', '--config', join(dir, 'server.yaml')), cwd: dir, ready: { line: /tessera proxy: ready/ }, readyTimeoutMs: 20_000 });
  return { server, port: port! };
}

async function prepare(
  ctx: BenchContext,
  v: HandshakeVariant,
  leaves: Record<'ec-p256' | 'rsa-2048', { client: LeafFiles; server: LeafFiles }>,
  app: () => Promise<AppHandle>,
): Promise<RoundVariant> {
  if (v.server === 'nginx' && !ctx.binaries.nginx) return { name: v.name, run: async () => ({ skipped: 'nginx not installed' }) };
  const slug = `hs-${HANDSHAKE_VARIANTS.indexOf(v) + 1}`;
  const pair = leaves[v.algorithm];
  let started: { server: SupervisedProcess; port: number };
  try {
    started = await startServer(ctx, v, pair.server, slug, app);
  } catch (e) {
    if (v.server !== 'tessera') throw e;
    const reason = `proxy not available (${shortReason((e as Error).message)})`;
    ctx.notes.push(`${v.name} skipped: ${reason}`);
    return { name: v.name, run: async () => ({ skipped: reason }) };
  }
  const { server, port } = started;
  if (v.client === 's_time') {
    const openssl = findBinary('openssl');
    if (!openssl) return { name: v.name, run: async () => ({ skipped: 'openssl not installed' }) };
    return sTimeVariant(ctx, openssl, v.name, slug, { server, port, client: pair.client }, v.resume);
  }
  const clientSpec = {
    port,
    certFile: pair.client.chainFile,
    keyFile: pair.client.keyFile,
    caFile: ctx.pki.rootFile,
    concurrency: ctx.opts.connections,
    resume: v.resume,
    perConnectionContext: v.perConnectionContext,
    servername: SERVER_DNS,
    expectedServerId: SERVER_ID,
    ...(v.clientGroups ? { ecdhCurve: v.clientGroups } : {}),
    ...(v.request === false ? { request: false } : {}),
  };
  const client = await ctx.group.start({ name: `${slug}-client`, command: process.execPath, args: [CLIENT_JS, JSON.stringify(clientSpec)], ready: { line: /^ready/ }, stdin: 'pipe', output: 'pipe' });
  const ask = clientDriver(client);
  const o = ctx.opts;
  return {
    name: v.name,
    async run(_round, tick) {
      tick(0);
      if (o.warmupMs > 0) await ask(o.warmupMs);
      tick(o.warmupMs / (o.warmupMs + o.durationMs));
      const { result: t, sample } = await measureWindow(
        [
          { role: 'server', pid: server.pid },
          { role: 'client', pid: client.pid },
        ],
        ctx.clockTicksPerSecond,
        () => ask(o.durationMs),
      );
      tick(1);
      const perHs = (us: number | undefined) => (t.handshakes > 0 && us !== undefined && Number.isFinite(us) ? Math.round(us / t.handshakes) : null);
      const serverUs = perHs(sample.cpuUs['server']);
      const row: Record<string, string | number | null> = {
        handshakes: t.handshakes,
        handshakesPerSec: Math.round(t.handshakes / (sample.wallMs / 1000)),
        resumedShare: t.handshakes > 0 ? Math.round((t.resumed / t.handshakes) * 1000) / 1000 : null,
        group: top(t.groups),
        protocol: top(t.protocols),
        serverCpuUsPerHandshake: serverUs,
        clientCpuUsPerHandshake: perHs(sample.cpuUs['client']),
        serverCapacityPerCore: serverUs ? Math.round(1e6 / serverUs) : null,
        errors: t.errors,
        errorSample: t.errorSample,
        machineBusy: Math.round(sample.machineBusy * 1000) / 1000,
        machineSteal: Math.round(sample.machineSteal * 1000) / 1000,
      };
      if (t.handshakes === 0) row['skipped'] = `no completed handshake (${t.errors} errors${t.errorSample ? `: ${t.errorSample}` : ''})`;
      return row;
    },
  };
}

function describe(m: Measurement): string {
  if (typeof m['skipped'] === 'string') return `skipped: ${m['skipped']}`;
  return `${m['handshakesPerSec']} handshakes/s (${m['group']}, resumed ${Math.round(Number(m['resumedShare']) * 100)} %), CPU µs/handshake server ${m['serverCpuUsPerHandshake']} client ${m['clientCpuUsPerHandshake']}${Number(m['errors']) ? `, ${m['errors']} errors` : ''}`;
}

async function run(opts: ScenarioOptions): Promise<ScenarioResult> {
  return withBenchContext(opts, { nginx: true }, async (ctx) => {
    opts.progress(0, 'crypto floor: openssl speed and Node crypto');
    const openssl = findBinary('openssl');
    let speed: CryptoRates | null = null;
    if (openssl) {
      try {
        speed = await runOpensslSpeed(openssl);
      } catch (e) {
        ctx.notes.push(`openssl speed failed: ${(e as Error).message.split('\n')[0]}`);
      }
    } else ctx.notes.push('openssl not installed: no `openssl speed` floor.');
    const nodeRates = nodeCryptoRates();
    opts.progress(0, 'minting RSA-2048 SVIDs and starting servers and clients');
    const leaves = {
      'ec-p256': { client: ctx.client, server: ctx.server },
      'rsa-2048': { client: await ctx.pki.writeLeaf('client-rsa', CLIENT_ID, 'rsa-2048'), server: await ctx.pki.writeLeaf('server-rsa', SERVER_ID, 'rsa-2048') },
    };
    // One app behind the Tessera server sides, started on first use.
    let app: Promise<AppHandle> | null = null;
    const appOnce = () => {
      app ??= startApp(ctx.env);
      return app;
    };
    const variants: RoundVariant[] = [];
    for (const v of HANDSHAKE_VARIANTS) variants.push(await prepare(ctx, v, leaves, appOnce));
    const rounds = await runRounds(opts, variants, describe);
    const floors = [floorMeasurement('crypto floor (Node OpenSSL)', `OpenSSL ${process.versions.openssl}`, nodeRates)];
    if (speed) floors.push(floorMeasurement('crypto floor (openssl speed)', /OpenSSL \S+/.exec(String(ctx.machine['systemOpenssl']))?.[0] ?? 'system OpenSSL', speed));
    const measurements = [...rounds, ...floors];
    return scenarioResult(ctx, 'handshake', {
      measurements,
      summary: handshakeSummary(measurements, HANDSHAKE_VARIANTS, NODE_FULL, NGINX_FULL),
      headlines: handshakeHeadlines(measurements, HANDSHAKE_VARIANTS, NODE_FULL, NGINX_FULL),
      notes: [
        ...ctx.notes,
        `Each variant: one server process and one client process (${opts.connections} concurrent connection loops: connect, full TLS 1.3 mTLS handshake, one request, close), both measured separately from /proc/<pid>/stat. Warm-up ${opts.warmupMs} ms, measured ${opts.durationMs} ms.`,
        'PKI: ECDSA P-256 root → intermediate → leaves (RSA-2048 leaves for the RSA variant, same ECDSA CAs); the client sends leaf + intermediate and trusts only the root; the server requires and verifies the client certificate; the client checks the server SPIFFE ID.',
        'Per-connection SecureContext: the server builds one per connection (SNI callback) and the client passes key/cert/ca to every tls.connect — what a proxy that does not cache contexts pays.',
        'The Tessera variants run the real proxy (`tessera proxy`, the server side of a pair alone, access log off, policy authorization): its server CPU per connection includes verifying the client SVID, the policy decision and forwarding the one request to the app (nginx, not measured) over its pool. Resumed = the client offers its last TLS 1.3 ticket.',
        `Key exchange: "node full, ECDSA" uses Node's defaults on both sides (X25519MLKEM768; the client sends X25519MLKEM768 and X25519 key shares); "X25519 only" restricts both sides. The Tessera rows use the groups a Tessera client offers: default \`transport.tlsGroups\` (${TESSERA_CLIENT_GROUPS.replaceAll(':', ', ')}: one X25519 share) or, in "${TESSERA_FULL_HYBRID}", the hybrid first on both sides.`,
        'Handshake only rows (full handshakes; a server sends its tickets only once it writes, so there is nothing to resume with): the Node client closes right after the handshake, no request: the server CPU of the handshake and of admitting the connection (SVID check, deny-list, metrics), without forwarding. "node full, handshake only" uses the same groups as the Tessera rows (X25519 first on both sides).',
        `openssl s_time rows: ${String(ctx.machine['systemOpenssl'] ?? 'system OpenSSL')}, one connection at a time (\`s_time -new\` or \`-reuse\`, \`-cert\`/\`-key\` the client SVID, \`-CAfile\` root + client chain so it sends leaf, intermediate and root, \`-www /\`: one request per connection), group X25519 (OpenSSL 3.0 has no ML-KEM); server CPU from /proc around the run, client CPU = the user seconds s_time reports. Durations are whole seconds (s_time's \`-time\`).`,
        'The nginx variant uses the system OpenSSL and the same Node client: it negotiates X25519 (OpenSSL 3.0 has no ML-KEM). Compare it with "node full, ECDSA, X25519 only".',
        'Crypto floor per side of a full mTLS handshake = 1 sign + 3 verifies (peer leaf, intermediate, CertificateVerify) + the key exchange (ephemeral keygen + derive; + ML-KEM-768 encapsulation for X25519MLKEM768). Hashing, AEAD, parsing and syscalls are left out. Resumed = key exchange only.',
      ],
    });
  });
}

export const handshakeScenario: BenchScenario = {
  name: 'handshake',
  summary: 'Server CPU per mTLS handshake: Node and the Tessera server side, full vs resumed, ECDSA vs RSA, cached vs per-connection SecureContext, X25519 vs X25519MLKEM768, vs nginx and openssl speed',
  defaults: { rounds: 5, warmupMs: 300, durationMs: 1_500, connections: 4 },
  run,
};
