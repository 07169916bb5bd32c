// Scenario `authz`: cost of one authorization decision (evaluate()) with 10 and 10,000 policies loaded, allow and
// deny paths, a memo-miss worst case, and the time to parse and compile 10,000 policies. Pure CPU, one thread.
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { TesseraError } from '../../common/errors.js';
import { evaluate } from '../../common/policy/evaluate.js';
import { parsePolicyYaml } from '../../common/policy/parse-policy.js';
import { type PolicySnapshot, PLAN_CACHE_SIZE, compilePolicies } from '../../common/policy/policy-snapshot.js';
import type { AuthorizationPolicy, AuthzRequest } from '../../common/policy/policy-types.js';
import { SpiffeId } from '../../common/spiffe/spiffe-id.js';
import { type RoundVariant, runRounds, scenarioResult } from '../harness/bench-context.js';
import { machineInfo } from '../harness/machine.js';
import { clockTicksPerSecond } from '../harness/proc-stat.js';
import { runStandalone } from '../harness/standalone.js';
import type { BenchScenario, Measurement, ScenarioOptions, ScenarioResult } from '../harness/scenario.js';
import { formatRatio, formatSpread, perRoundRatios, spread, valuesOf } from '../harness/stats.js';

const TD = 'spiffe://bench.test';
const DEST = `${TD}/ns/prod/sa/api`;
const WEB = `${TD}/ns/prod/sa/web`;

/** The three policies selecting DEST (exact ALLOW, namespace-wide ALLOW, trust-domain-wide DENY), then fillers. */
export function benchPolicies(count: number): AuthorizationPolicy[] {
  const out: AuthorizationPolicy[] = [
    {
      name: 'api-allow',
      selector: DEST,
      action: 'ALLOW',
      mode: 'enforce',
      rules: [
        { from: [1, 2, 3, 4, 5].map((i) => `${TD}/ns/prod/sa/client${i}`), to: { ports: [8443], methods: ['GET'], paths: ['/v1/*'] } },
        { from: [`${TD}/ns/ops/**`] },
        { from: [WEB], to: { ports: [8443], methods: ['GET', 'POST'], paths: ['/v1/items/**', '/v2/*'] } },
      ],
    },
    { name: 'prod-allow-monitoring', selector: `${TD}/ns/prod/sa/*`, action: 'ALLOW', mode: 'enforce', rules: [{ from: [`${TD}/ns/monitoring/sa/*`], to: { paths: ['/metrics'] } }] },
    { name: 'mesh-deny-quarantine', selector: `${TD}/**`, action: 'DENY', mode: 'enforce', rules: [{ from: [`${TD}/ns/quarantine/**`] }] },
  ];
  // Fillers select other workloads: 70% exact, 25% namespace wildcards in the same trust domain, 5% other domains.
  for (let i = 0; out.length < count; i++) {
    const kind = i % 20;
    const selector = kind < 14 ? `${TD}/ns/ns${i % 200}/sa/svc${i}` : kind < 19 ? `${TD}/ns/team${i}/sa/*` : `spiffe://other${i % 10}.test/**`;
    out.push({
      name: `filler-${String(i).padStart(5, '0')}`,
      selector,
      action: i % 7 === 0 ? 'DENY' : 'ALLOW',
      mode: i % 11 === 0 ? 'audit' : 'enforce',
      rules: [
        { from: [`${TD}/ns/ns${(i + 1) % 200}/sa/svc${i + 1}`, `${TD}/ns/team${i}/sa/*`], to: { methods: ['GET'], paths: ['/api/**'] } },
        { from: [`${TD}/ns/ops/**`] },
      ],
    });
  }
  return out;
}

function toYaml(policies: readonly AuthorizationPolicy[]): string {
  // JSON is YAML: one flow-style document per policy, the shape operators write.
  return policies
    .map((p) => `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: {name: ${p.name}}\nspec: ${JSON.stringify({ selector: p.selector, action: p.action, mode: p.mode, rules: p.rules })}\n`)
    .join('---\n');
}

const request = (from: string, to = DEST): AuthzRequest => ({
  source: SpiffeId.parse(from),
  destination: SpiffeId.parse(to),
  port: 8443,
  method: 'GET',
  path: '/v1/items/42',
  protocol: 'http',
  nowMs: 0,
});

interface DecisionVariant {
  readonly name: string;
  readonly policies: number;
  /** Distinct requests cycled through; more destinations than the memo holds make every decision a miss. */
  readonly requests: () => AuthzRequest[];
  readonly expect: { allowed: boolean; reason: string };
}

const ALLOW_REQ = () => [request(WEB)];
const DENY_REQ = () => [request(`${TD}/ns/other/sa/nobody`)];
// Destinations in the namespace-wide ALLOW's namespace: each is a memo miss once the set exceeds the memo.
const COLD_REQ = () => Array.from({ length: PLAN_CACHE_SIZE * 4 }, (_, i) => request(WEB, `${TD}/ns/prod/sa/w${i}`));

const DECISION_VARIANTS: readonly DecisionVariant[] = [
  { name: '10 policies, allow', policies: 10, requests: ALLOW_REQ, expect: { allowed: true, reason: 'allowed_by_rule' } },
  { name: '10 policies, deny', policies: 10, requests: DENY_REQ, expect: { allowed: false, reason: 'no_matching_rule' } },
  { name: '10k policies, allow', policies: 10_000, requests: ALLOW_REQ, expect: { allowed: true, reason: 'allowed_by_rule' } },
  { name: '10k policies, deny', policies: 10_000, requests: DENY_REQ, expect: { allowed: false, reason: 'no_matching_rule' } },
  { name: '10 policies, memo miss every decision', policies: 10, requests: COLD_REQ, expect: { allowed: false, reason: 'no_matching_rule' } },
  { name: '10k policies, memo miss every decision', policies: 10_000, requests: COLD_REQ, expect: { allowed: false, reason: 'no_matching_rule' } },
];

/** A turn of the event loop at most this often, so a Ctrl-C is heard within it (its cost is far below the spread). */
const YIELD_EVERY_MS = 100;

/** A turn of the event loop, then BENCH_ABORTED if the run was interrupted meanwhile. */
async function checkpoint(signal: AbortSignal | undefined): Promise<void> {
  await nextTurn();
  if (signal?.aborted) throw new TesseraError('TESSERA_ERR_BENCH_ABORTED');
}

/** Evaluates in batches until the deadline; returns decisions made and wall/CPU time. */
async function loop(snapshot: PolicySnapshot, reqs: readonly AuthzRequest[], ms: number, signal: AbortSignal | undefined): Promise<{ n: number; wallNs: number; cpuNs: number; allowed: number }> {
  const batch = 2_000;
  let n = 0;
  let allowed = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + ms;
  let now = t0;
  let yieldAt = t0 + YIELD_EVERY_MS;
  while (now < deadline) {
    for (let i = 0; i < batch; i++) if (evaluate(snapshot, reqs[(n + i) % reqs.length]!).allowed) allowed++;
    n += batch;
    now = performance.now();
    if (now >= yieldAt && now < deadline) {
      await checkpoint(signal);
      yieldAt = performance.now() + YIELD_EVERY_MS;
    }
  }
  const cpu = process.cpuUsage(cpu0);
  return { n, wallNs: (now - t0) * 1e6, cpuNs: (cpu.user + cpu.system) * 1e3, allowed };
}

function decisionVariant(v: DecisionVariant, snapshots: Map<number, PolicySnapshot>, opts: ScenarioOptions): RoundVariant {
  return {
    name: v.name,
    async run() {
      const snapshot = snapshots.get(v.policies)!;
      const reqs = v.requests();
      const probe = evaluate(snapshot, reqs[0]!);
      if (probe.allowed !== v.expect.allowed || probe.reason !== v.expect.reason) throw new Error(`${v.name}: expected ${v.expect.reason}, got ${JSON.stringify(probe)}`);
      await loop(snapshot, reqs, opts.warmupMs, opts.signal);
      const r = await loop(snapshot, reqs, opts.durationMs, opts.signal);
      return {
        decisionsPerSec: Math.round(r.n / (r.wallNs / 1e9)),
        nsPerDecision: Number((r.wallNs / r.n).toFixed(1)),
        cpuNsPerDecision: Number((r.cpuNs / r.n).toFixed(1)),
        decisions: r.n,
        allowedFraction: Number((r.allowed / r.n).toFixed(3)),
        reason: probe.reason,
        selecting: snapshot.selecting(reqs[0]!.destination).length,
      };
    },
  };
}

function loadVariant(yaml10k: string, signal: AbortSignal | undefined): RoundVariant {
  return {
    name: 'load 10k policies',
    async run() {
      const t0 = performance.now();
      const parsed = parsePolicyYaml(yaml10k, 'bench.yaml');
      const t1 = performance.now();
      await checkpoint(signal);
      const t1b = performance.now();
      const snapshot = compilePolicies(parsed);
      const t2 = performance.now();
      return { parseMs: Number((t1 - t0).toFixed(1)), compileMs: Number((t2 - t1b).toFixed(1)), policies: snapshot.policies.length };
    },
  };
}

function summary(ms: readonly Measurement[]): Measurement[] {
  const s = (variant: string, k: string) => spread(valuesOf(ms, variant, k));
  const rows: Measurement[] = DECISION_VARIANTS.map((v) => ({
    variant: v.name,
    'decisions/s': formatSpread(s(v.name, 'decisionsPerSec')),
    'ns/decision': formatSpread(s(v.name, 'nsPerDecision')),
    'CPU ns/decision': formatSpread(s(v.name, 'cpuNsPerDecision')),
    'policies selecting': formatSpread(s(v.name, 'selecting')),
    outcome: v.expect.reason,
  }));
  rows.push({ variant: 'load 10k policies', 'parse YAML ms': formatSpread(s('load 10k policies', 'parseMs')), 'compile ms': formatSpread(s('load 10k policies', 'compileMs')) });
  return rows;
}

function headlines(ms: readonly Measurement[]): string[] {
  const med = (v: string, k: string) => spread(valuesOf(ms, v, k))?.median;
  const ratio = (a: string, b: string) => formatRatio(spread(perRoundRatios(ms, a, b, 'nsPerDecision')));
  const out: string[] = [];
  const a10 = med('10 policies, allow', 'nsPerDecision');
  const a10k = med('10k policies, allow', 'nsPerDecision');
  if (a10 !== undefined && a10k !== undefined) {
    out.push(
      `One decision costs ${a10} ns with 10 policies and ${a10k} ns with 10,000 (${ratio('10k policies, allow', '10 policies, allow')} per round): cost follows the policies selecting the destination, not the mesh.`,
    );
  }
  const miss10 = med('10 policies, memo miss every decision', 'nsPerDecision');
  const miss = med('10k policies, memo miss every decision', 'nsPerDecision');
  if (miss !== undefined && miss10 !== undefined) {
    out.push(
      `A memo miss (a new destination every decision: the selector index is walked and the plan rebuilt) costs ${miss10} ns with 10 policies and ${miss} ns with 10,000 (${ratio('10k policies, memo miss every decision', '10 policies, memo miss every decision')} per round).`,
    );
  }
  const parse = med('load 10k policies', 'parseMs');
  const compile = med('load 10k policies', 'compileMs');
  if (parse !== undefined && compile !== undefined) out.push(`Parsing 10,000 policies from YAML takes ${parse} ms; compiling and indexing them ${compile} ms.`);
  return out;
}

async function run(opts: ScenarioOptions): Promise<ScenarioResult> {
  const startedAt = new Date().toISOString();
  const machine = await machineInfo(clockTicksPerSecond());
  // Seconds of CPU before the first round: a Ctrl-C is heard between the steps.
  const snapshots = new Map<number, PolicySnapshot>();
  for (const n of [10, 10_000]) {
    snapshots.set(n, compilePolicies(benchPolicies(n)));
    await checkpoint(opts.signal);
  }
  const yaml10k = toYaml(benchPolicies(10_000));
  await checkpoint(opts.signal);
  const variants = [...DECISION_VARIANTS.map((v) => decisionVariant(v, snapshots, opts)), loadVariant(yaml10k, opts.signal)];
  const measurements = await runRounds(opts, variants, (m) =>
    m['nsPerDecision'] !== undefined ? `${m['nsPerDecision']} ns/decision, ${m['decisionsPerSec']} decisions/s` : `parse ${m['parseMs']} ms, compile ${m['compileMs']} ms`,
  );
  return scenarioResult({ opts, machine, startedAt }, 'authz', {
    measurements,
    summary: summary(measurements),
    headlines: headlines(measurements),
    notes: [
      'Single thread, in process: evaluate() on a compiled snapshot; no I/O. Wall and CPU time per decision.',
      'Requests: HTTP GET /v1/items/42 on port 8443 (path normalization included). allow = matched by rule 2 of the exact ALLOW; deny = no rule of the 2 ALLOW policies matches after the DENY is tried.',
      '10k = 3 policies selecting the destination + 9,997 fillers (70% exact selectors, 25% namespace wildcards, 5% other trust domains; 1 in 11 audit mode).',
    ],
    options: { policiesSmall: 10, policiesLarge: 10_000, memoSize: PLAN_CACHE_SIZE },
  });
}

export const authzScenario: BenchScenario = {
  name: 'authz',
  summary: 'Authorization decisions per second and ns per decision, 10 vs 10,000 policies, allow/deny, memo miss',
  defaults: { durationMs: 1_000, warmupMs: 300, rounds: 5, connections: 1 },
  run,
};

// Standalone: `npx node dist/bench/scenarios/authz.js` prints the result JSON on stdout, progress on stderr.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runStandalone(authzScenario, { durationMs: 1_000, warmupMs: 300, rounds: 5, connections: 1 });
}
