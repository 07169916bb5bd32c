// `tessera bench <scenario|all>`: runs benchmark scenarios under the harness and writes their JSON results.
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { formatDuration } from '../../common/duration.js';
import { TesseraError } from '../../common/errors.js';
import type { RunOverrides } from '../../bench/harness/run-scenario.js';
import type { ScenarioResult } from '../../bench/harness/scenario.js';
import { boolFlag, type ParsedArgs, stringFlag } from '../args.js';
import { type CommandIo, EXIT_FAILURE, EXIT_OK } from '../command.js';
import { loadHarness } from '../load-harness.js';
import { BENCH_RANGES } from '../commands/bench.js';
import { durationFlag, numberFlag } from '../number-flags.js';
import { checkOutFile, writeOutFile } from '../output-files.js';

/** `--load`: which generator drives closed-loop load (keep-alive and connection per request); wrk has no fixed rate (the paced generator does). */
export function loadFlag(args: ParsedArgs): 'autocannon' | 'wrk' {
  const v = stringFlag(args, 'load') ?? 'autocannon';
  if (v !== 'autocannon' && v !== 'wrk') throw new TesseraError('TESSERA_ERR_CLI_USAGE', `--load must be autocannon or wrk, got "${v}"`);
  if (v === 'wrk' && stringFlag(args, 'rate') !== undefined) {
    throw new TesseraError('TESSERA_ERR_CLI_USAGE', '--load wrk drives a closed loop; a fixed --rate is driven by the paced generator (leave --load out)');
  }
  return v;
}

/** Scenarios with a pair row a baseline build can be measured beside. */
const BASELINE_SCENARIOS = ['mesh', 'mesh-cpr'];

/**
 * `--baseline-cli F`: another build's `dist/cli/tessera.js`, run as a pair of its own in the same rounds (the way to
 * measure a change: two runs an hour apart differ by more than most changes). Absolute, and it must be a file.
 */
export function baselineCliFlag(args: ParsedArgs, scenario: string | undefined): string | undefined {
  const v = stringFlag(args, 'baseline-cli');
  if (v === undefined) return undefined;
  if (scenario !== 'all' && !BASELINE_SCENARIOS.includes(scenario ?? '')) {
    throw new TesseraError('TESSERA_ERR_CLI_USAGE', `--baseline-cli applies to ${BASELINE_SCENARIOS.join(' and ')} (and all), not "${scenario ?? ''}"`);
  }
  const path = resolve(v);
  if (!statSync(path, { throwIfNoEntry: false })?.isFile()) {
    throw new TesseraError('TESSERA_ERR_CLI_USAGE', `--baseline-cli: no file at "${path}" (give another build's dist/cli/tessera.js)`);
  }
  return path;
}

/**
 * The harness (scenarios, load generators, crypto floor) is loaded only when a benchmark runs, through loadHarness:
 * the container image leaves bench/ out, and there `tessera bench` fails with its code, not with a module error.
 */
async function harness() {
  const [registry, runner, markdown, progress] = await loadHarness('tessera bench', () =>
    Promise.all([
      import('../../bench/scenarios/registry.js'),
      import('../../bench/harness/run-scenario.js'),
      import('../../bench/report/render-markdown.js'),
      import('../../bench/harness/progress.js'),
    ]),
  );
  return { ...registry, ...runner, ...markdown, ...progress };
}
type Harness = Awaited<ReturnType<typeof harness>>;

/** The listing, with the flags given (a run with them would take this long). */
function listing({ SCENARIOS, effectiveOptions }: Harness, overrides: RunOverrides): string {
  const lines = ['Scenarios (rounds × (warm-up + measured) per variant, with the flags given):', ''];
  const width = Math.max(11, ...SCENARIOS.map((s) => s.name.length + 2));
  for (const s of SCENARIOS) {
    const e = effectiveOptions(s, overrides);
    lines.push(`  ${s.name.padEnd(width)}${s.summary}`);
    lines.push(
      `  ${''.padEnd(width)}${e.primeMs ? `priming ${formatDuration(e.primeMs)} per variant once, then ` : ''}${e.rounds} rounds × (${formatDuration(e.warmupMs)} + ${formatDuration(e.durationMs)}), ${e.connections} connections`,
    );
  }
  lines.push('', 'Run one with `tessera bench <scenario> [--json F]`, or all of them with `tessera bench all --json F`.');
  return `${lines.join('\n')}\n`;
}

function textSummary(r: ScenarioResult, markdownTable: Harness['markdownTable']): string {
  const parts = [`\n## ${r.scenario}\n`];
  if (r.headlines.length) parts.push(r.headlines.map((h) => `- ${h}`).join('\n'), '');
  if (r.summary.length) parts.push(markdownTable(r.summary), '');
  if (r.notes.length) parts.push(r.notes.map((n) => `- ${n}`).join('\n'), '');
  return `${parts.join('\n')}\n`;
}

/**
 * Every flag read once and checked, before anything is listed, loaded or run: a bad value is refused whatever the
 * command goes on to do (audit 56c F6: `bench --rounds 0` printed the listing and ignored it).
 */
function overridesOf(args: ParsedArgs, name: string | undefined): RunOverrides {
  const durationMs = durationFlag(args, 'duration', BENCH_RANGES.duration);
  const warmupMs = durationFlag(args, 'warmup', BENCH_RANGES.warmup);
  const primeMs = durationFlag(args, 'prime', BENCH_RANGES.prime);
  const rounds = numberFlag(args, 'rounds', true, BENCH_RANGES.rounds);
  const connections = numberFlag(args, 'connections', true, BENCH_RANGES.connections);
  const rateRps = numberFlag(args, 'rate', false, BENCH_RANGES.rate);
  const load = loadFlag(args);
  const baselineCli = baselineCliFlag(args, name);
  return {
    ...(durationMs !== undefined ? { durationMs } : {}),
    ...(warmupMs !== undefined ? { warmupMs } : {}),
    ...(primeMs !== undefined ? { primeMs } : {}),
    ...(rounds !== undefined ? { rounds } : {}),
    ...(connections !== undefined ? { connections } : {}),
    ...(rateRps !== undefined ? { rateRps } : {}),
    ...(load === 'wrk' ? { load } : {}),
    ...(baselineCli !== undefined ? { baselineCli } : {}),
    keepWorkDir: boolFlag(args, 'keep-work-dir'),
  };
}

export async function runBench(args: ParsedArgs, io: CommandIo): Promise<number> {
  const name = args.positionals[0];
  const overrides = overridesOf(args, name);
  const h = await harness();
  const { SCENARIOS, findScenario, runScenario } = h;
  if (name === undefined || name === 'list') {
    io.stdout(listing(h, overrides));
    return EXIT_OK;
  }
  const scenarios = name === 'all' ? SCENARIOS : [findScenario(name)];
  if (scenarios.some((s) => s === undefined)) {
    throw new TesseraError('TESSERA_ERR_CLI_USAGE', `unknown scenario "${name}" (known: ${SCENARIOS.map((s) => s.name).join(', ')}, all)`);
  }
  const jsonFlag = stringFlag(args, 'json');
  const jsonFile = jsonFlag === undefined ? undefined : resolve(io.cwd, jsonFlag);
  // Before the run: a run of minutes is not spent to find its results have nowhere to go.
  if (jsonFile !== undefined) await checkOutFile('json', jsonFile);
  const abort = new AbortController();
  void io.stopSignal.then(() => abort.abort());
  const sink = h.terminalProgress(io.stderr, process.stderr.isTTY === true, () => process.stderr.columns ?? 100, () => io.clock.nowMs());
  const results: ScenarioResult[] = [];
  for (const s of scenarios) {
    const running = runScenario(s!, overrides, sink, abort.signal);
    running.catch(() => undefined); // a rejection after an abort is already reported below
    // On Ctrl-C the scenario stops its processes and throws; give it a few seconds, then leave anyway.
    const aborted = new Promise<'aborted'>((resolve) => abort.signal.addEventListener('abort', () => io.timers.setTimeout(() => resolve('aborted'), 5_000, 'keep-alive'), { once: true }));
    const outcome = await Promise.race([running, aborted]).catch((e: unknown) => {
      if (abort.signal.aborted) return 'aborted' as const;
      throw e;
    });
    if (outcome === 'aborted') {
      sink.done();
      io.stderr('tessera bench: interrupted; every process it started was stopped\n');
      return EXIT_FAILURE;
    }
    results.push(outcome.result);
    io.stdout(textSummary(outcome.result, h.markdownTable));
    if (outcome.workDir) io.stderr(`work dir kept: ${outcome.workDir}\n`);
    // Written after each scenario so that a later failure in `all` keeps what was measured.
    if (jsonFile) await writeOutFile('json', jsonFile, `${JSON.stringify(name === 'all' ? results : results[0], null, 2)}\n`, 0o644);
  }
  if (jsonFile) io.stderr(`results written to ${jsonFlag}\n`);
  return EXIT_OK;
}
