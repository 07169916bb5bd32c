// The contract every benchmark scenario implements, so `tessera bench <scenario>` can run, report and chart it.

export interface ScenarioOptions {
  /** Measured time per measurement (after warm-up). */
  readonly durationMs: number;
  readonly warmupMs: number;
  /**
   * Closed-loop load through each variant once, before its first warm-up, not measured (0 = none). A JIT runtime
   * (Node, V8) keeps compiling for its first tens of thousands of requests; without this a low fixed rate measures
   * the compiler, which a long-running proxy pays once.
   */
  readonly primeMs?: number;
  /** Client connections for load-driven scenarios. */
  readonly connections: number;
  /** Rounds; every round measures every variant once, in an order rotated per round. */
  readonly rounds: number;
  /** A scratch directory the scenario owns for the run (certificates, configs, logs). */
  readonly workDir: string;
  readonly log: (line: string) => void;
  /** Progress in [0, 1] with a short label, drawn as a bar on a terminal. */
  readonly progress: (fraction: number, label: string) => void;
  /** Fixed offered load in requests/s across all connections (same for every variant); absent = closed loop. */
  readonly rateRps?: number;
  /**
   * `--load wrk`: closed-loop rows without a client certificate, keep-alive and connection-per-request, are driven
   * by wrk (this binary, with this report hook) instead of autocannon and the harness's own generator; absent = those.
   */
  readonly wrk?: { readonly binary: string; readonly script: string };
  /**
   * `--baseline-cli`: another build's `dist/cli/tessera.js` (e.g. main, against a change). The mesh scenarios add a
   * pair of it as a row, measured in the same rounds as the pair of this build; absent = no such row.
   */
  readonly baselineCli?: string;
  /** Aborted on Ctrl-C or a fatal error: stop driving load and stop every process the scenario started. */
  readonly signal?: AbortSignal;
}

/** One measured variant in one round, e.g. {variant: "nginx pair", reqPerSec: …, cpuUsPerReqClient: …}. */
export type Measurement = Readonly<Record<string, string | number | null>>;

export interface ScenarioResult {
  readonly scenario: string;
  readonly startedAt: string;
  readonly machine: Readonly<Record<string, string | number>>;
  readonly options: Readonly<Record<string, string | number>>;
  /** Every raw measurement (variant × round). */
  readonly measurements: readonly Measurement[];
  /** Per-variant summary rows (medians, min–max, ratios), in display order. */
  readonly summary: readonly Measurement[];
  /** Headline ratios and facts a note should quote. */
  readonly headlines: readonly string[];
  readonly notes: readonly string[];
}

export interface BenchScenario {
  readonly name: string;
  readonly summary: string;
  /** Defaults sized so the whole scenario runs in under 2 minutes on a 2-core machine; flags override them. */
  readonly defaults?: Partial<Pick<ScenarioOptions, 'durationMs' | 'warmupMs' | 'primeMs' | 'connections' | 'rounds'>>;
  run(opts: ScenarioOptions): Promise<ScenarioResult>;
}
