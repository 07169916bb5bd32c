// Reads `tessera bench --json` files (one result or an array) from files and directories, checking their shape.
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { TesseraError } from '../../common/errors.js';
import type { ScenarioResult } from '../harness/scenario.js';

function isResult(x: unknown): x is ScenarioResult {
  if (typeof x !== 'object' || x === null) return false;
  const r = x as Record<string, unknown>;
  return (
    typeof r['scenario'] === 'string' &&
    typeof r['startedAt'] === 'string' &&
    Array.isArray(r['measurements']) &&
    Array.isArray(r['summary']) &&
    Array.isArray(r['headlines']) &&
    Array.isArray(r['notes']) &&
    typeof r['machine'] === 'object' &&
    typeof r['options'] === 'object'
  );
}

/** Parses one results file's text; `name` is only for the error message. */
export function parseResults(text: string, name: string): ScenarioResult[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new TesseraError('TESSERA_ERR_BENCH_RESULTS_INVALID', `${name}: not JSON (${(e as Error).message})`);
  }
  const list = Array.isArray(data) ? data : [data];
  list.forEach((r, i) => {
    if (!isResult(r)) throw new TesseraError('TESSERA_ERR_BENCH_RESULTS_INVALID', `${name}: entry ${i} is not a scenario result (scenario, startedAt, measurements, summary, ...)`);
  });
  return list as ScenarioResult[];
}

/**
 * What a result is reported under: the scenario, plus the connections when the run changed the scenario's default
 * ("mesh-c128"), the fixed offered load when it had one ("mesh-rate1500") and the load generator when it was wrk
 * ("mesh-wrk") or a baseline build row ("mesh-baseline"), because each is a different experiment from the default run and all are kept.
 */
export function resultKey(r: Pick<ScenarioResult, 'scenario' | 'options'>): string {
  const rate = r.options['rateRps'];
  const conns = r.options['connections'];
  const moved = typeof r.options['defaultConnections'] === 'number' && typeof conns === 'number' && conns !== r.options['defaultConnections'];
  return `${r.scenario}${moved ? `-c${conns}` : ''}${typeof rate === 'number' ? `-rate${rate}` : ''}${r.options['load'] === 'wrk' ? '-wrk' : ''}${typeof r.options['baselineCli'] === 'string' ? '-baseline' : ''}`;
}

/** Every result in the given files and directories (*.json, sorted by name); the latest per key wins. */
export async function loadResults(paths: readonly string[]): Promise<ScenarioResult[]> {
  const files: string[] = [];
  for (const p of paths) {
    const st = await stat(p).catch(() => null);
    if (!st) throw new TesseraError('TESSERA_ERR_CLI_FILE_UNREADABLE', `cannot read ${p}`);
    if (st.isDirectory()) {
      for (const name of (await readdir(p)).sort()) if (name.endsWith('.json')) files.push(join(p, name));
    } else files.push(p);
  }
  const all: ScenarioResult[] = [];
  for (const f of files) all.push(...parseResults(await readFile(f, 'utf8'), f));
  if (all.length === 0) throw new TesseraError('TESSERA_ERR_BENCH_RESULTS_INVALID', `no results found in ${paths.join(', ')}`);
  const latest = new Map<string, ScenarioResult>();
  for (const r of all) {
    const prev = latest.get(resultKey(r));
    if (!prev || prev.startedAt <= r.startedAt) latest.set(resultKey(r), r);
  }
  return [...latest.values()];
}
