// Config/Watch under a large policy set: many distinct SPIFFE IDs open their Watch streams at once, then one
// publish reaches every stream, while a separate process polls the control plane's /ready (audit 51a: 100 IDs x 10
// streams under a 2,000-rule policy held /ready for 3-4 s, each ID's first open building everything). Reported per
// phase: the longest /ready answer and gap, control-plane CPU, RSS before / peak / after, time until every stream
// has its snapshot. Not part of `npm test`:
// `node_modules/.bin/node dist/bench/hold/config-watch-opens.js [--ids 100] [--streams 10] [--rules 2000] [--shape one|spread] [--json F]`.
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { WATCH_PATH } from '../../common/contract/config-v1.js';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair, privateKeyPem } from '../../common/pki/keys.js';
import { encodePem } from '../../common/pki/pem.js';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { ISSUANCE_TD, type IssuingServer, controlPlaneChannel, createJoinTokens, identityClient, signSvid, startIssuingServer } from '../harness/issuance-client.js';
import { durationFlag, flag, openFilesLimit, sampleProcess, withHoldContext, writeJson } from './hold-common.js';

const PROBE = fileURLToPath(new URL('../harness/children/ready-probe.js', import.meta.url));
const SA = `spiffe://${ISSUANCE_TD}/ns/bench/sa`;

/** The rules of the audit's policy: none names a bench workload, so each is read and none matches. */
const rule = (i: number) => `    - { from: [spiffe://${ISSUANCE_TD}/ns/team-${i}/sa/*, spiffe://${ISSUANCE_TD}/ns/team-${i}/sa/x/**], to: { methods: [GET, POST], paths: [/api/v${i}/*/items/**, /svc/${i}/**] } }\n`;
const head = (name: string, selector: string) => `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: ${name} }\nspec:\n  selector: ${selector}\n  action: ALLOW\n  rules:\n`;

/** `one`: one policy of `rules` rules selecting every bench ID; `spread`: `rules` one-rule policies, each selecting one ID. */
function policyYaml(shape: string, rules: number, ids: number): string {
  if (shape === 'one') return head('big', `${SA}/**`) + Array.from({ length: rules }, (_, i) => rule(i)).join('');
  return Array.from({ length: rules }, (_, i) => head(`p-${String(i).padStart(5, '0')}`, `${SA}/w-${i % ids}`) + rule(i)).join('---\n');
}

/** The version of an encoded ConfigSnapshot without decoding the rest (field 1, a string, is written first). */
function versionOf(bytes: Buffer): number {
  if (bytes[0] !== 0x0a) return -1;
  let len = 0;
  let shift = 0;
  let i = 1;
  for (; i < bytes.length; i++) {
    len |= (bytes[i]! & 0x7f) << shift;
    shift += 7;
    if ((bytes[i]! & 0x80) === 0) break;
  }
  return Number(bytes.subarray(i + 1, i + 1 + len).toString('utf8'));
}

interface Stream {
  versions: number[];
  bytes: number;
  error: string | null;
}

const vmHwmKb = (pid: number) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);

/** Resets the kernel's peak RSS (VmHWM) of a process of ours, so a phase's peak is its own; false where not allowed. */
function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

async function probeStats(port: number): Promise<{ polls: number; fails: number; maxMs: number; maxGapMs: number; slow: [number, number][] }> {
  return (await (await fetch(`http://127.0.0.1:${port}/stats`)).json()) as never;
}

async function waitFor(what: string, cond: () => boolean, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Math.round(performance.now() - t0);
}

async function enroll(server: IssuingServer, ids: number): Promise<{ keyPem: string; chainPem: string }[]> {
  const tokens = await createJoinTokens(server, ids, 'w');
  const tls = identityClient(server);
  try {
    const out: { keyPem: string; chainPem: string }[] = [];
    for (const token of tokens) {
      const key = generateKeyPair();
      const r = await signSvid(tls, { csr: await createCsr(key, {}), join_token: token });
      out.push({ keyPem: privateKeyPem(key), chainPem: r.svid_chain.map((d) => encodePem('CERTIFICATE', d)).join('') });
    }
    return out;
  } finally {
    tls.close();
  }
}

async function main(argv: readonly string[]): Promise<void> {
  const ids = Number(flag(argv, 'ids', '100'));
  const perId = Number(flag(argv, 'streams', '10'));
  const rules = Number(flag(argv, 'rules', '2000'));
  const shape = flag(argv, 'shape', 'one');
  const settleMs = durationFlag(argv, 'settle', '3s');
  const out = flag(argv, 'json', '');
  await withHoldContext('config-watch', async (ctx) => {
    const log = ctx.opts.log;
    const dir = join(ctx.opts.workDir, 'cp');
    await mkdir(join(dir, 'policies'), { recursive: true });
    await writeFile(join(dir, 'policies', 'bench.yaml'), policyYaml(shape, rules, ids));
    const server = await startIssuingServer(ctx.group, dir, 'control-plane', ['policies: { dir: ./policies }', `limits: { maxStreamsPerId: ${perId * 2} }`]);
    const svids = await enroll(server, ids);
    const policies = shape === 'one' ? 1 : rules;
    for (let i = 0; i < 600; i++) {
      const m = await (await fetch(`http://${server.admin}/metrics`)).text();
      if (new RegExp(`^tessera_policies_loaded ${policies}$`, 'm').test(m)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const probe = await ctx.group.start({ name: 'ready-probe', command: process.execPath, args: [PROBE, `http://${server.admin}/ready`, '20'], ready: { line: /ready-probe: port \d+/ }, output: 'pipe' });
    const probePort = Number(/ready-probe: port (\d+)/.exec(probe.stdout())?.[1]);
    const clients = svids.map((svid) => {
      const { creds, options } = controlPlaneChannel(server, svid);
      return new grpc.Client(server.grpc, creds, options);
    });
    let rssPeakKb = 0;
    const sampler = setInterval(() => (rssPeakKb = Math.max(rssPeakKb, sampleProcess(server.pid)?.rssKb ?? 0)), 50);
    const phase = async (name: string, act: () => Promise<void> | void, done: () => boolean) => {
      await new Promise((r) => setTimeout(r, settleMs));
      await probeStats(probePort);
      const before = sampleProcess(server.pid)!;
      rssPeakKb = before.rssKb;
      const hwmReset = resetPeakRss(server.pid);
      const t0 = performance.now();
      await act();
      await waitFor(name, done, 300_000);
      const servedMs = performance.now() - t0;
      const p = await probeStats(probePort);
      const after = sampleProcess(server.pid)!;
      const r = { phase: name, servedMs: Math.round(servedMs), readyMaxMs: p.maxMs, readyMaxGapMs: p.maxGapMs, readyPolls: p.polls, readyFails: p.fails, readySlow: p.slow, cpCpuMs: Math.round(((after.cpuTicks - before.cpuTicks) / ctx.clockTicksPerSecond) * 1000), rssBeforeKb: before.rssKb, rssPeakKb, rssAfterKb: after.rssKb, vmHwmKb: hwmReset ? vmHwmKb(server.pid) : null };
      log(`${name}: all served in ${r.servedMs} ms; /ready longest ${r.readyMaxMs} ms (gap ${r.readyMaxGapMs} ms); cp CPU ${r.cpCpuMs} ms; RSS ${Math.round(r.rssBeforeKb / 1024)} -> peak ${Math.round(r.rssPeakKb / 1024)} -> ${Math.round(r.rssAfterKb / 1024)} MiB`);
      return r;
    };
    const streams: Stream[] = [];
    const open = phase(
      'open',
      () => {
        for (const client of clients) {
          for (let j = 0; j < perId; j++) {
            const s: Stream = { versions: [], bytes: 0, error: null };
            const call = client.makeServerStreamRequest<Buffer, Buffer>(WATCH_PATH, () => Buffer.alloc(0), (b) => b, Buffer.alloc(0));
            call.on('data', (b: Buffer) => {
              s.versions.push(versionOf(b));
              s.bytes = b.length;
            });
            call.on('error', (e: grpc.ServiceError) => (s.error ??= `${e.code} ${e.details}`));
            streams.push(s);
          }
        }
      },
      () => streams.every((s) => s.versions.length >= 1 || s.error !== null),
    );
    const opened = await open;
    // A ban of a serial no workload holds (force: not one this control plane issued): every stream's deny-list changes.
    const publish = await phase('publish', async () => void (await adminRequest(server.dataDir, 'POST', '/v1/revocations', { kind: 'serial', value: 'ab'.repeat(16), reason: 'bench', createdBy: 'bench', force: true })), () => streams.every((s) => s.versions.length >= 2 || s.error !== null));
    clearInterval(sampler);
    for (const c of clients) c.close();
    const errors = streams.filter((s) => s.error !== null);
    // Each stream's versions only grow (a stream never sees an older snapshot after a newer one).
    const ordered = streams.every((s) => s.versions.every((v, i) => v > 0 && (i === 0 || v > s.versions[i - 1]!)));
    const result = {
      scenario: 'config-watch-opens',
      startedAt: ctx.startedAt,
      cli: process.env['TESSERA_BENCH_CLI'] ?? 'this build',
      machine: { ...ctx.machine, ulimitN: openFilesLimit() ?? 'unknown' },
      options: { ids, streamsPerId: perId, rules, shape, settleMs },
      snapshotBytes: Math.max(...streams.map((s) => s.bytes)),
      streams: streams.length,
      errors: errors.length,
      firstError: errors[0]?.error ?? null,
      versionsGrow: ordered,
      phases: [opened, publish],
    };
    await writeJson(out || null, result);
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  });
}
