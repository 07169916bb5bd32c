// Many distinct workloads opening Config/Watch at once against the real `tessera control-plane` process, under a
// policy set of exact, wildcard, trust-domain-wide and DENY selectors plus one large policy (an outside audit, 40a:
// 100 IDs x 10 streams under a 2,000-rule policy held /ready for 3-4 s, each ID's first open preparing the whole
// set). Every stream is answered with exactly the policies selecting its ID, whole; /ready answers meanwhile; each
// build looks only at the entries selecting its ID (tessera_config_snapshot_entries_examined_total, 13 per build
// here, where a scan of the set would be 304); a ban then reaches every stream with a newer version.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { ConfigSnapshotMsg } from '../../common/contract/config-v1.js';
import { compileIdPattern } from '../../common/spiffe/match.js';
import { SpiffeId } from '../../common/spiffe/spiffe-id.js';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { type ClientSvid, type RunningControlPlane, TD, controlPlaneClients, joinTokenSvid, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { sumSeries } from '../helpers/prom-metrics.js';
import { makeTempDir } from '../helpers/run.js';
import { type CollectedStream, collectStream } from '../helpers/stream-collector.js';
import { until } from '../helpers/until.js';

const SA = `spiffe://${TD}/ns/default/sa`;
const IDS = 30;
const STREAMS = 3;

const doc = (name: string, selector: string, action: string, rules: string) => `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: ${name} }\nspec:\n  selector: ${selector}\n  action: ${action}\n  rules:\n${rules}`;
const oneRule = `    - { from: [${SA}/caller] }\n`;
/** Name and selector of every policy written, to work out what each ID must get. */
const written: { name: string; selector: string }[] = [];
function policyFiles(): string {
  const docs: string[] = [];
  const add = (name: string, selector: string, action: string, rules = oneRule) => {
    written.push({ name, selector });
    docs.push(doc(name, selector, action, rules));
  };
  for (let i = 0; i < IDS * 10; i++) add(`exact-${String(i).padStart(3, '0')}`, `${SA}/w${i % IDS}`, 'ALLOW');
  add('any-sa', `${SA}/*`, 'ALLOW');
  add('deny-td', `spiffe://${TD}/**`, 'DENY');
  add('elsewhere', `spiffe://${TD}/ns/other/**`, 'ALLOW');
  // ~90 KB of rules every workload gets.
  add('big', `spiffe://${TD}/ns/default/**`, 'ALLOW', Array.from({ length: 500 }, (_, i) => `    - { from: [spiffe://${TD}/ns/team-${i}/sa/*], to: { methods: [GET], paths: [/api/v${i}/*/items/**] } }\n`).join(''));
  return docs.join('---\n');
}

let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane;
let bundlePem: string;

const svidOf = (id: string): Promise<ClientSvid> => joinTokenSvid(cp, bundlePem, id);

const metric = async (name: string) => sumSeries(await (await fetch(`http://${cp.admin}/metrics`)).text(), name);

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const config = await writeControlPlaneConfig(dir);
  await writeFile(join(dir, 'policies', 'many.yaml'), policyFiles());
  cp = await startControlPlaneProcess(dir, config);
  bundlePem = await readFile(join(cp.dataDir, 'bundle.pem'), 'utf8');
  await until('the policy set loaded', async () => (await metric('tessera_policies_loaded')) === written.length, 30_000);
});
afterAll(async () => {
  const code = await cp?.stop();
  await cleanup();
  expect(code).toBe(0);
});

test('30 workloads x 3 Watch streams opened at once: each stream gets exactly its policies; /ready answers; a ban reaches all', async () => {
  const ids = Array.from({ length: IDS }, (_, i) => `${SA}/w${i}`);
  const clients = [];
  for (const id of ids) clients.push(controlPlaneClients(cp.grpc, bundlePem, await svidOf(id)));
  try {
    const buildsBefore = await metric('tessera_config_snapshot_builds_total');
    const examinedBefore = await metric('tessera_config_snapshot_entries_examined_total');
    const streams = clients.map((c) => Array.from({ length: STREAMS }, () => collectStream(c.config.Watch!({}) as grpc.ClientReadableStream<ConfigSnapshotMsg>)));
    // Asked while the opens are being served: it is answered (the opens do not hold the control plane).
    const ready = fetch(`http://${cp.admin}/ready`);
    await until('every stream answered', () => streams.flat().every((s) => s.seen.length > 0 || s.ended() !== undefined), 60_000);
    expect((await ready).status).toBe(200);
    expect(streams.flat().filter((s) => s.ended() !== undefined).map((s) => s.ended()?.error?.message)).toEqual([]);

    const selectors = written.map((p) => ({ name: p.name, pattern: compileIdPattern(p.selector) }));
    ids.forEach((id, i) => {
      const want = selectors.filter((p) => p.pattern.matches(SpiffeId.parse(id))).map((p) => p.name).sort();
      expect(want).toHaveLength(13);
      for (const s of streams[i]!) {
        const got = s.seen[0]!;
        expect(got.policies.map((p) => p.name), id).toEqual(want);
        // Whole documents: each parses, and names its own policy and selector.
        for (const p of got.policies) expect((JSON.parse(p.json) as { metadata: { name: string } }).metadata.name).toBe(p.name);
      }
    });
    // One build per ID (more if a publish came in between), each looking at the 13 entries selecting its ID only.
    const builds = (await metric('tessera_config_snapshot_builds_total')) - buildsBefore;
    expect(builds).toBeGreaterThanOrEqual(IDS);
    expect((await metric('tessera_config_snapshot_entries_examined_total')) - examinedBefore).toBe(13 * builds);

    // A ban changes every workload's deny-list: every stream gets a newer version holding it, and only newer ones.
    const serial = 'ab'.repeat(16);
    await adminRequest(cp.dataDir, 'POST', '/v1/revocations', { kind: 'serial', value: serial, reason: 'test', createdBy: 'test', force: true });
    const all: CollectedStream<ConfigSnapshotMsg>[] = streams.flat();
    await until('every stream has the ban', () => all.every((s) => s.seen.some((m) => m.deny_list?.serials.includes(serial))), 60_000);
    for (const s of all) {
      const versions = s.seen.map((m) => Number(m.version));
      expect(versions.every((v, i) => i === 0 || v > versions[i - 1]!)).toBe(true);
      expect(s.seen.at(-1)!.policies).toHaveLength(13);
    }
    expect((await fetch(`http://${cp.admin}/ready`)).status).toBe(200);
    for (const s of all) s.cancel();
    await until('no watcher left', async () => (await metric('tessera_config_watchers')) === 0);
  } finally {
    for (const c of clients) c.close();
  }
});
