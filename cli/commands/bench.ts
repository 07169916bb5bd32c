// `tessera bench <scenario|all>`: runs benchmark scenarios under the harness and writes their JSON results.
import { type Command, runOnDemand } from '../command.js';

/** The ranges of bench's numbers (docs/cli.md); --warmup and --prime may be 0s (none). */
export const BENCH_RANGES = {
  duration: { min: 1, max: 3_600_000 },
  warmup: { min: 0, max: 3_600_000 },
  prime: { min: 0, max: 3_600_000 },
  rounds: { min: 1, max: 1_000 },
  connections: { min: 1, max: 10_000 },
  rate: { min: 0.01, max: 1_000_000 },
} as const;

export const benchCommand: Command = {
  path: ['bench'],
  ownsStop: true,
  summary: 'Run a benchmark scenario (mesh, reuse, handshake, rotation, ...) against nginx/HAProxy peers in the same run',
  usage: '[SCENARIO|all|list] [--duration D] [--warmup D] [--prime D] [--rounds N] [--connections N] [--rate R] [--load autocannon|wrk] [--baseline-cli F] [--json F] [--keep-work-dir]',
  details:
    'Starts every process it measures on loopback (app, Tessera proxies, nginx/HAProxy peers — installed with apt-get when missing and running as root), ' +
    'drives load, samples CPU time and RSS from /proc, and stops everything it started (also on Ctrl-C). ' +
    'The headline figure is CPU µs per request per proxy side as a ratio to the nginx and HAProxy pairs of the same run. ' +
    'Render results with `tessera bench report`. Run from the built tree (`npm run build`).',
  positionals: [0, 1],
  flags: {
    duration: { type: 'string', value: 'D', description: 'Measured time per variant per round, at most 1h (default per scenario, e.g. 3s)' },
    warmup: { type: 'string', value: 'D', description: 'Unmeasured warm-up before each measurement, 0s to 1h (e.g. 1s)' },
    prime: { type: 'string', value: 'D', description: 'Unmeasured closed-loop load through each variant once before its first measurement, 0s to 1h (load scenarios; default per scenario)' },
    rounds: { type: 'string', value: 'N', description: 'Rounds, 1 to 1000; every round measures every variant once, in rotated order (default 5)' },
    connections: { type: 'string', value: 'N', description: 'Concurrent client connections, 1 to 10000 (default 32)' },
    rate: { type: 'string', value: 'R', description: 'Fixed offered load in requests/s, 0.01 to 1000000 (default: closed loop)' },
    load: { type: 'string', value: 'GEN', description: "Closed-loop load generator: autocannon and the harness's own (default), or wrk (one thread; keep-alive, or a connection per request in mesh-cpr; rows with a client certificate keep the default)" },
    'baseline-cli': { type: 'string', value: 'F', description: "Another build's dist/cli/tessera.js (e.g. main's): mesh and mesh-cpr add a pair of it as a row, measured in the same rounds, with its ratio in the headlines" },
    json: { type: 'string', value: 'FILE', description: 'Write the machine-readable results here (an array for `all`)' },
    'keep-work-dir': { type: 'boolean', description: 'Keep configs, logs and certificates of the run for inspection' },
  },
  run: runOnDemand(() => import('../run/bench.js'), (m) => m.runBench),
};
