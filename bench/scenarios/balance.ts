// Scenario `balance`: a control plane, 3 replicas of a service (demo app + self-registering sidecar, each on its own
// 127.0.0.x) and a caller's sidecar balancing over them by `service:` — evenness, the share a slow replica gets,
// failed requests while a replica's sidecar is SIGKILLed, and the balancer's CPU per request against the same
// topology through a sidecar with a static `upstream:` to one replica.
import { DEFAULT_ROUTING } from '../../proxy/src/config/routing-config.js';
import { type BenchContext, type RoundVariant, runRounds, scenarioResult, withBenchContext } from '../harness/bench-context.js';
import { describeLoad, measureLoadVariant } from '../harness/load-variant.js';
import type { MeasuredProcess } from '../harness/measure-window.js';
import type { BenchScenario, Measurement, ScenarioOptions, ScenarioResult } from '../harness/scenario.js';
import { type CallerHandle, type ReplicaHandle, endpointState, meshWorkloadId, startBenchControlPlane, startCaller, startReplica } from '../peers/mesh-topology.js';
import { allowPolicyYaml, sumMetric } from '../peers/tessera-config.js';
import { BALANCED, EXTRA_US_PER_SIDE_MAX, KILLED, ONE, SLOW, STATIC, balanceHeadlines, balanceSummary, requestsKey, shareKey, withShares } from './balance-summary.js';
import { failureNotes } from './pair-summary.js';

const SERVICE = 'api';
const REPLICAS = 3;
const SLOW_DELAY_MS = 50;
/** Offered load when `--rate` is not given: the same for every variant, so CPU per request compares like with like. */
export const DEFAULT_OFFERED_RPS = 1_000;

/**
 * The caller's outlier ejection lasts this long (default 30 s): a killed replica's sidecar, started again on the same
 * address, is routed to once its ejection ends, and each kill round waits for that (bounded run time).
 */
const BASE_EJECTION_MS = 5_000;

const API_ID = meshWorkloadId(SERVICE);
/** One more replica, alone in its service: reached by `service:` and by a static `upstream:`, the routing code's cost. */
const SOLO_SERVICE = 'api-solo';
const SOLO_ID = meshWorkloadId(SOLO_SERVICE);
const CALLER_ID = meshWorkloadId('client');

/** A metric's total in a scrape, 0 when absent (no sample yet); null when the scrape fails (a killed sidecar). */
async function scrape(metrics: () => Promise<string>, name: string, filter?: (labels: string) => boolean): Promise<number | null> {
  try {
    return sumMetric(await metrics(), name, filter) ?? 0;
  } catch {
    return null;
  }
}

/** Requests each replica's sidecar served (inbound), and the caller's retries and ejections. */
async function counters(replicas: readonly ReplicaHandle[], caller: CallerHandle): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const put = (k: string, v: number | null) => {
    if (v !== null) out[k] = v;
  };
  await Promise.all([
    ...replicas.map(async (r) => put(requestsKey(r.index), await scrape(r.metrics, 'tessera_requests_total', (l) => l.includes('direction="inbound"')))),
    (async () => put('retries', await scrape(caller.metrics, 'tessera_retries_total')))(),
    (async () => put('ejections', await scrape(caller.metrics, 'tessera_ejections_total')))(),
  ]);
  return out;
}

/** Client side = the caller's sidecar; server = every replica's sidecar (summed); app = every replica's app. */
function measuredProcesses(caller: CallerHandle, replicas: readonly ReplicaHandle[]): MeasuredProcess[] {
  return [{ role: 'client', pid: caller.process.pid }, ...replicas.map((r) => ({ role: `replica${r.index}`, pid: r.proxy().pid })), ...replicas.map((r) => ({ role: `app${r.index}`, pid: r.app().pid }))];
}

/** Folds the per-replica CPU roles into server (sidecars) and app sums; drops per-replica RSS. */
export function foldReplicaRoles(row: Measurement, replicas: number): Measurement {
  const out: Record<string, string | number | null> = { ...row };
  const sum = (prefix: string) => {
    let total = 0;
    for (let i = 1; i <= replicas; i++) {
      const v = row[`cpuUsPerReq${prefix}${i}`];
      if (typeof v !== 'number') return null;
      total += v;
    }
    return Math.round(total * 10) / 10;
  };
  out['cpuUsPerReqServer'] = sum('Replica');
  out['cpuUsPerReqApp'] = sum('App');
  const client = row['cpuUsPerReqClient'];
  out['cpuUsPerReqProxies'] = typeof client === 'number' && typeof out['cpuUsPerReqServer'] === 'number' ? Math.round((client + out['cpuUsPerReqServer']) * 10) / 10 : null;
  for (let i = 1; i <= replicas; i++) {
    delete out[`rssMbReplica${i}`];
    delete out[`rssMbApp${i}`];
  }
  return out;
}

/** The same options with progress mapped into [from, from + width) of the whole run. */
function phase(opts: ScenarioOptions, from: number, width: number): ScenarioOptions {
  return { ...opts, progress: (f, label) => opts.progress(from + f * width, label) };
}

/** How long a kill round waits for the restarted replica to be routed to again: an ejection, and some. */
const BACK_IN_ROTATION_WAIT_MS = BASE_EJECTION_MS + 10_000;

/**
 * Milliseconds from now until the caller's `/endpoints` shows `replica` ready again (its sidecar just restarted),
 * or null when it is not within BACK_IN_ROTATION_WAIT_MS.
 */
async function backInRotation(caller: CallerHandle, replica: ReplicaHandle, signal: AbortSignal | undefined): Promise<number | null> {
  const t0 = Date.now();
  const deadline = t0 + BACK_IN_ROTATION_WAIT_MS;
  while (Date.now() < deadline && !signal?.aborted) {
    const view = await caller.endpoints().catch(() => null);
    if (endpointState(view, SERVICE, replica.inbound) === 'ready') return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 200));
  }
  return null;
}

/** Polls through `port` until a request succeeds: the caller has discovered the service. */
async function firstAnswer(port: number, signal: AbortSignal | undefined, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline && !signal?.aborted) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.ok) return;
      last = `status ${res.status} ${res.headers.get('x-tessera-error') ?? ''}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no answer through the caller's sidecar within ${timeoutMs} ms (last: ${last})`);
}

async function run(opts: ScenarioOptions): Promise<ScenarioResult> {
  return withBenchContext(opts, {}, async (ctx: BenchContext) => {
    const offeredRps = opts.rateRps ?? DEFAULT_OFFERED_RPS;
    const load = { ...opts, rateRps: offeredRps };
    const clk = ctx.clockTicksPerSecond;
    opts.progress(0, 'starting the control plane, 3 replicas and 2 callers');
    const cp = await startBenchControlPlane(
      ctx.env,
      { 'api-allow-client.yaml': allowPolicyYaml(API_ID, CALLER_ID), 'api-solo-allow-client.yaml': allowPolicyYaml(SOLO_ID, CALLER_ID, 'bench-allow-client-solo') },
      // The replicas are in namespace bench: their services are listed, not read from the names.
      { [SERVICE]: [API_ID], [SOLO_SERVICE]: [SOLO_ID] },
    );
    const replicas: ReplicaHandle[] = [];
    for (let i = 1; i <= REPLICAS; i++) replicas.push(await startReplica(ctx.env, cp, SERVICE, i));
    const solo = await startReplica(ctx.env, cp, SOLO_SERVICE, REPLICAS + 1);
    const registeredAt = Date.now();
    const balancer = await startCaller(ctx.env, cp, 'caller-service', CALLER_ID, { service: SERVICE }, { outlier: { baseEjectionTime: `${BASE_EJECTION_MS}ms` } });
    const one = await startCaller(ctx.env, cp, 'caller-one', CALLER_ID, { service: SOLO_SERVICE });
    const fixed = await startCaller(ctx.env, cp, 'caller-static', CALLER_ID, { upstream: solo.inbound, spiffeId: SOLO_ID });
    for (const c of [balancer, one, fixed]) await firstAnswer(c.entryPort, opts.signal);
    // Endpoints new to the balancer get a growing share for a while (slow start): measure once that is over.
    const settle = DEFAULT_ROUTING.slowStartMs - (Date.now() - registeredAt);
    if (settle > 0) {
      opts.log(`waiting ${Math.ceil(settle / 1000)} s for the replicas' slow start to end`);
      await new Promise((r) => setTimeout(r, settle));
    }

    const measure = (o: ScenarioOptions, caller: CallerHandle, extra: { measured?: MeasuredProcess[]; onMeasuredStart?: () => void } = {}) => (_round: number, tick: (f: number) => void) =>
      measureLoadVariant(o, clk, {
        port: caller.entryPort,
        mode: 'keep-alive',
        measured: extra.measured ?? measuredProcesses(caller, replicas),
        windowCounters: () => counters(replicas, caller),
        ...(extra.onMeasuredStart ? { onMeasuredStart: extra.onMeasuredStart } : {}),
      }, tick).then((row) => withShares(foldReplicaRoles(row, REPLICAS), REPLICAS));

    // The solo replica's variants: its sidecar and app are the measured server side (role 1), no shares.
    const measureSolo = (caller: CallerHandle) => (_round: number, tick: (f: number) => void) =>
      measureLoadVariant(load, clk, {
        port: caller.entryPort,
        mode: 'keep-alive',
        measured: [{ role: 'client', pid: caller.process.pid }, { role: 'replica1', pid: solo.proxy().pid }, { role: 'app1', pid: solo.app().pid }],
        windowCounters: () => counters([], caller),
      }, tick).then((row) => foldReplicaRoles(row, 1));

    // (a) + (d): the balancer, the one-endpoint service and the static upstream in the same rounds, order rotated.
    const total = 5 * opts.rounds;
    const a = await runRounds(phase(load, 0, (3 * opts.rounds) / total), [
      { name: BALANCED, run: measure(load, balancer) },
      { name: ONE, run: measureSolo(one) },
      { name: STATIC, run: measureSolo(fixed) },
    ], describeBalance);

    // (b): replica 3's app answers 50 ms later.
    const slowOne = replicas[REPLICAS - 1]!;
    await slowOne.restartApp(SLOW_DELAY_MS);
    const b = await runRounds(phase(load, (3 * opts.rounds) / total, opts.rounds / total), [{ name: SLOW, run: measure(load, balancer) }], describeBalance);
    await slowOne.restartApp(0);

    // (c): one replica's sidecar SIGKILLed halfway through the window (a different one each round), then restarted;
    // the next round waits (bounded) until the caller routes to it again, and says how long that took.
    const killRound: RoundVariant = {
      name: KILLED,
      run: async (round, tick) => {
        const victim = replicas[round % REPLICAS]!;
        let killed: Promise<unknown> = Promise.resolve();
        const timer = { id: undefined as NodeJS.Timeout | undefined };
        const onMeasuredStart = () => {
          timer.id = setTimeout(() => {
            killed = victim.proxy().stop({ signal: 'SIGKILL' });
          }, load.durationMs / 2);
        };
        let row: Measurement;
        try {
          // Only the caller is measured: the victim's CPU is lost with it.
          row = await measure(load, balancer, { measured: [{ role: 'client', pid: balancer.process.pid }], onMeasuredStart })(round, tick);
        } finally {
          clearTimeout(timer.id);
          await killed;
          await victim.restartProxy();
        }
        return { ...row, killedReplica: victim.name, backInRotationMs: await backInRotation(balancer, victim, opts.signal) };
      },
    };
    const c = await runRounds(phase(load, (4 * opts.rounds) / total, opts.rounds / total), [killRound], describeBalance);

    const measurements = [...a, ...b, ...c];
    return scenarioResult(ctx, 'balance', {
      measurements,
      summary: balanceSummary(measurements, REPLICAS),
      headlines: balanceHeadlines(measurements, { replicas: REPLICAS, offeredRps }),
      notes: [
        ...ctx.notes,
        ...failureNotes(measurements),
        `Topology: \`tessera control-plane\` (join tokens, one ALLOW policy client → api, the service registry); ${REPLICAS} replicas of service \`${SERVICE}\`, each \`tessera demo-app\` + a sidecar on its own loopback address (127.0.0.2–127.0.0.${REPLICAS + 1}) whose inbound listener registers itself (\`service: ${SERVICE}\`), all with the SPIFFE ID ${API_ID}; a fourth replica alone in service \`${SOLO_SERVICE}\` (${SOLO_ID}) on 127.0.0.${REPLICAS + 2}; three caller sidecars (${CALLER_ID}): "${BALANCED}" routes by \`service: ${SERVICE}\` (P2C over peak-EWMA, retries, outlier ejection), "${ONE}" by \`service: ${SOLO_SERVICE}\` and "${STATIC}" by \`upstream:\` + \`spiffeId:\`, both to the solo replica: their difference is the routing code's own cost on one endpoint. Every SVID comes from the control plane. Access logs off.`,
        `Load: autocannon, HTTP/1.1 keep-alive GETs, ${opts.connections} connections, a fixed ${offeredRps} req/s for every variant (\`--rate\` changes it); warm-up ${opts.warmupMs} ms, measured ${opts.durationMs} ms. Measurements start after the replicas' slow start (${DEFAULT_ROUTING.slowStartMs / 1000} s) is over.`,
        `Shares: requests each replica's sidecar counted in \`tessera_requests_total{direction="inbound"}\` over the measured window, as a share of all of them (a retried request is counted where each attempt went). Retries and ejections: the caller's \`tessera_retries_total\` and \`tessera_ejections_total\` over the window.`,
        `"${SLOW}": replica ${REPLICAS}'s app restarted with \`--delay ${SLOW_DELAY_MS}ms\` for these rounds only (after the even rounds), then restarted without it. "${KILLED}": in round r the sidecar of replica ((r − 1) mod ${REPLICAS}) + 1 gets SIGKILL halfway through the measured window and is started again (new join token) after it; its registration stays until the control plane's grace ends, so the balancer must route around a dead endpoint on its own. Failed = non-2xx answers + connection errors + timeouts seen by the load generator. "back in rotation": from the restarted sidecar being ready until the caller's \`/endpoints\` shows it \`ready\` again (the next round starts only then, or after ${BACK_IN_ROTATION_WAIT_MS / 1000} s). The caller's \`routing.outlier.baseEjectionTime\` is ${BASE_EJECTION_MS / 1000} s instead of the default ${DEFAULT_ROUTING.outlier.baseEjectionMs / 1000} s so that a round does not wait out a whole default ejection: a sidecar started again on the address of an ejected endpoint is routed to only when that ejection ends. Every other routing setting is the default.`,
        `CPU = utime+stime from /proc/<pid>/stat around the measured window ÷ completed requests: "client side" is the caller's sidecar, "replicas (sum)" the ${REPLICAS} replica sidecars added up (for "${ONE}" and "${STATIC}": the solo replica's sidecar), app the demo apps. The balancer's cost is the per-round difference "${ONE}" − "${STATIC}" in the same round: the same replica, the same load, only the caller's routing differs (discovery, the P2C pick, the per-request route and its metrics). The issue's bound (≤ ${EXTRA_US_PER_SIDE_MAX} µs/req extra per side) is judged there, on both sides. "${BALANCED}" − "${STATIC}" is shown too, but it is mostly not the balancer's code: 3 replica sidecars and 3 apps wake up instead of one on a 2-core machine, and each runs at a third of the rate, where CPU per request is higher (less work per wake-up).`,
      ],
      options: { offeredRps, replicas: REPLICAS, slowDelayMs: SLOW_DELAY_MS },
    });
  });
}

/** The log line of one measurement: the load line, then the replicas' shares and the failures. */
function describeBalance(m: Measurement): string {
  const shares = Array.from({ length: REPLICAS }, (_, i) => m[shareKey(i + 1)]).filter((x) => typeof x === 'number');
  const killed = typeof m['killedReplica'] === 'string' ? `, killed ${m['killedReplica']}` : '';
  return `${describeLoad(m)}${shares.length ? `, shares ${shares.join(' / ')} %` : ''}${killed}`;
}

export const balanceScenario: BenchScenario = {
  name: 'balance',
  summary: 'Mesh routing over 3 replicas (control plane, service: outbound): evenness, share to a 50 ms slower replica, failures while a replica is SIGKILLed, balancer CPU µs/req vs a static upstream',
  defaults: { rounds: 5, warmupMs: 500, durationMs: 3_000, connections: 32 },
  run,
};
