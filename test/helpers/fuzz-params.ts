// Run settings for property tests: a fixed seed and a small run count in `npm test`; `npm run fuzz`
// (test/fuzz-run/fuzz.ts) sets TESSERA_FUZZ_SEED and TESSERA_FUZZ_SCALE so the same properties run many times
// longer from a fresh seed, and a failure replays with the seed it printed.
import type { Parameters } from 'fast-check';

const scale = (): number => Number(process.env.TESSERA_FUZZ_SCALE ?? '1');

/** `seed` and `numRuns` as given, unless the fuzz runner set a seed and a scale for this process. */
export function fuzzParams<T>(seed: number, numRuns: number): Parameters<T> {
  const envSeed = process.env.TESSERA_FUZZ_SEED;
  return { seed: envSeed ? Number(envSeed) : seed, numRuns: Math.ceil(numRuns * scale()) };
}

/** Per-test timeout: the default in `npm test`, scaled with the run count under the fuzz runner. */
export function fuzzTimeoutMs(ms = 30_000): number {
  return Math.ceil(ms * Math.max(1, scale()));
}
