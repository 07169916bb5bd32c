// Soak of long-lived gRPC streams (issue 18: "10 minutes across at least three SVID rotations and a CA rotation with
// 0 broken streams"): a real control plane issuing short-lived SVIDs, the sidecar pair (web's outbound gRPC → api's
// inbound gRPC) and a grpc-js app; server, client and bidi streams kept open for a random 30–120 s each and renewed,
// a CA rotation (prepare → activate → retire) every --ca-every, and a new call every 5 s checked to present web's
// current SVID. Reports rotations, streams, messages, broken streams and identity checks; exits 1 on any break.
// Not part of `npm test`: `node_modules/.bin/node dist/bench/hold/grpc-streams-soak.js [--duration 10m] [--ttl 30s]
// [--ca-every 4m] [--streams 3] [--json F]`.
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePorts } from '../harness/ports.js';
import { tesseraCommand } from '../peers/topology.js';
import { type OpenStream, openChat, openUpload, openWatch, presentedHash, StreamsApp, StreamTally, streamsClient, watchLeafHashes } from './grpc-streams.js';
import { durationFlag, flag, sampleProcess, withHoldContext, writeJson } from './hold-common.js';

const TD = 'soak.test';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const KINDS = [(c: Parameters<typeof openChat>[0], t: StreamTally) => openChat(c, t, 200), (c: Parameters<typeof openChat>[0], t: StreamTally) => openWatch(c, t, 300), (c: Parameters<typeof openChat>[0], t: StreamTally) => openUpload(c, t, 250)];

interface Certs {
  serial: string;
  bundles: { fingerprints: string[] }[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function poll(what: string, cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await sleep(250);
  }
}

function cli(tessera: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [tessera, ...args], { timeout: 30_000 }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

async function main(argv: readonly string[]): Promise<void> {
  const durationMs = durationFlag(argv, 'duration', '10m');
  const ttl = flag(argv, 'ttl', '30s');
  const caEveryMs = durationFlag(argv, 'ca-every', '4m');
  const perKind = Number(flag(argv, 'streams', '3'));
  const out = flag(argv, 'json', '');
  const failed = await withHoldContext('grpc-streams', async (ctx) => {
    const log = ctx.opts.log;
    const tessera = ctx.env.tesseraCli;
    const dir = ctx.opts.workDir;
    const app = new StreamsApp();
    await app.start();
    const cpDir = join(dir, 'cp');
    await mkdir(join(cpDir, 'policies'), { recursive: true });
    await writeFile(join(cpDir, 'cp.yaml'), [`trustDomain: ${TD}`, 'dataDir: ./data', 'listen: 127.0.0.1:0', 'adminListen: 127.0.0.1:0', 'policies: { dir: ./policies }', 'logLevel: warn', `svid: { ttl: ${ttl}, maxTtl: ${ttl}, backdate: 5s }`, ''].join('\n'));
    await writeFile(join(cpDir, 'policies', 'api.yaml'), `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow-web }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: [${WEB}]\n`);
    const cp = await ctx.group.start({ name: 'control-plane', ...tesseraCommand(tessera, 'control-plane', '--config', join(cpDir, 'cp.yaml')), cwd: cpDir, ready: { line: /tessera control-plane: ready/ } });
    const address = /tessera control-plane: grpc (\S+)/.exec(await readFile(cp.logFile!, 'utf8'))?.[1];
    if (!address) throw new Error(`no control-plane address in ${cp.logFile}`);
    const dataDir = join(cpDir, 'data');
    const [apiPort, apiAdmin, webPort, webAdmin] = await freePorts(4);
    const proxy = async (name: string, id: string, body: string) => {
      const token = await cli(tessera, ['token', 'create', '--data-dir', dataDir, '--spiffe-id', id, '--ttl', '10m']);
      if (token.code !== 0) throw new Error(`token create: ${token.stderr}`);
      await writeFile(join(dir, `${name}.token`), token.stdout.trim(), { mode: 0o600 });
      const conf = join(dir, `${name}.yaml`);
      await writeFile(conf, `identity:\n  controlPlane: { address: ${address}, bundleFile: ${join(dataDir, 'bundle.pem')}, joinTokenFile: ${name}.token }\n${body}telemetry: { accessLog: off }\n`);
      return ctx.group.start({ name, ...tesseraCommand(tessera, 'proxy', '--config', conf), cwd: dir, ready: { line: /tessera proxy: ready/ }, readyTimeoutMs: 30_000 });
    };
    const api = await proxy('api', API, `inbound:\n  - { name: grpc, listen: 127.0.0.1:${apiPort}, forwardTo: 127.0.0.1:${app.port}, protocol: grpc }\nadmin: { listen: 127.0.0.1:${apiAdmin} }\n`);
    const web = await proxy('web', WEB, `outbound:\n  - { name: grpc, listen: 127.0.0.1:${webPort}, upstream: 127.0.0.1:${apiPort}, spiffeId: ${API}, protocol: grpc }\nadmin: { listen: 127.0.0.1:${webAdmin} }\nworkloadApi: { socket: ${join(dir, 'web.sock')} }\n`);
    const certs = async (admin: number): Promise<Certs> => (await fetch(`http://127.0.0.1:${admin}/certs`)).json() as Promise<Certs>;
    const client = streamsClient(`127.0.0.1:${webPort}`);
    const leaves = new Map<string, string>();
    const stopLeaves = watchLeafHashes(join(dir, 'web.sock'), leaves);
    const serials = { web: new Set<string>(), api: new Set<string>() };
    const identity = { checks: 0, mismatches: [] as string[] };
    const tally = new StreamTally();
    let caRotations = 0;
    let running = true; // the /certs watcher's
    const t0 = Date.now();
    const end = t0 + durationMs;
    log(`grpc-streams soak: ${durationMs / 1000} s, SVID ttl ${ttl}, CA rotation every ${caEveryMs / 1000} s, ${perKind} streams of each kind (bidi, server, client); api pid ${api.pid}, web pid ${web.pid}`);

    // Streams: each lives 30–120 s (past several rotations), then ends cleanly and a new one takes its place.
    const lanes = KINDS.flatMap((open) =>
      Array.from({ length: perKind }, async () => {
        while (Date.now() < end - 5_000) {
          const s: OpenStream = open(client, tally);
          await sleep(Math.min(30_000 + Math.random() * 90_000, end - Date.now()));
          await s.finish(); // at once when it broke meanwhile (already counted)
        }
      }),
    );
    // Rotations seen (polling /certs), and every 5 s a new call checked against web's current SVID.
    const watcher = (async () => {
      let nextCheck = Date.now() + 5_000;
      while (running) {
        const [w, a] = await Promise.all([certs(webAdmin!), certs(apiAdmin!)]).catch(() => [null, null]);
        if (w) serials.web.add(w.serial);
        if (a) serials.api.add(a.serial);
        if (w && Date.now() >= nextCheck && leaves.has(w.serial)) {
          nextCheck = Date.now() + 5_000;
          const hash = await presentedHash(client).catch((e: Error) => `error: ${e.message}`);
          const now = await certs(webAdmin!).catch(() => null);
          if (now?.serial === w.serial) {
            identity.checks++;
            if (hash !== leaves.get(w.serial)) identity.mismatches.push(`serial ${w.serial}: call presented ${hash}`);
          }
        }
        await sleep(1_000);
      }
    })();
    // CA rotations: prepare, wait for both bundles, activate, wait for renewals from it, retire once allowed.
    const roots = async () => [(await certs(apiAdmin!)).bundles[0]!.fingerprints.length, (await certs(webAdmin!)).bundles[0]!.fingerprints.length];
    let caError: string | undefined;
    const caLoop = (async () => {
      while (Date.now() + caEveryMs < end) {
        await sleep(caEveryMs / 2);
        const must = async (args: string[]) => {
          const r = await cli(tessera, ['ca', ...args, '--data-dir', dataDir]);
          if (r.code !== 0) throw new Error(`ca ${args.join(' ')}: ${r.stderr}`);
        };
        await must(['prepare']);
        await poll('both proxies trust both roots', async () => (await roots()).every((n) => n === 2), 60_000);
        await must(['activate']);
        await poll('old authority retired', async () => (await cli(tessera, ['ca', 'retire', '--data-dir', dataDir])).code === 0, 10 * 60_000);
        await poll('bundles back to one root', async () => (await roots()).every((n) => n === 1), 60_000);
        caRotations++;
        log(`t=${Math.round((Date.now() - t0) / 1000)}s CA rotation ${caRotations} done`);
        await sleep(caEveryMs / 2);
      }
    })().catch((e: Error) => {
      caError = e.message;
      log(`CA rotation failed: ${e.message}`);
    });
    const progress = setInterval(() => {
      const [a, w] = [sampleProcess(api.pid), sampleProcess(web.pid)];
      log(`t=${Math.round((Date.now() - t0) / 1000)}s rotations web ${serials.web.size - 1} api ${serials.api.size - 1}, CA ${caRotations}; streams ${tally.opened} opened ${tally.completed} completed ${tally.broken.length} broken; ${tally.messages} messages; identity checks ${identity.checks} (${identity.mismatches.length} wrong); rss api ${a?.rssKb} kB web ${w?.rssKb} kB`);
    }, 30_000);
    progress.unref();
    await Promise.all(lanes);
    await caLoop;
    running = false;
    await watcher;
    clearInterval(progress);
    stopLeaves();
    client.close();
    app.close();
    const result = {
      durationS: Math.round((Date.now() - t0) / 1000),
      svidTtl: ttl,
      rotations: { web: serials.web.size - 1, api: serials.api.size - 1, ca: caRotations, ...(caError ? { caError } : {}) },
      streams: { opened: tally.opened, completed: tally.completed, broken: tally.broken.length },
      messages: tally.messages,
      brokenDetails: tally.broken.slice(0, 50),
      identityChecks: { total: identity.checks, wrong: identity.mismatches.length, details: identity.mismatches.slice(0, 20) },
      rssKb: { api: sampleProcess(api.pid)?.rssKb ?? null, web: sampleProcess(web.pid)?.rssKb ?? null },
    };
    log(`grpc-streams soak: ${JSON.stringify(result)}`);
    if (out) await writeJson(out, result);
    return caError !== undefined || result.streams.broken > 0 || result.identityChecks.wrong > 0 || result.streams.opened !== result.streams.completed;
  });
  process.exitCode = failed ? 1 : 0;
}

await main(process.argv.slice(2));
