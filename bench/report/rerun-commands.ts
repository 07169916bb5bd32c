// The command lines printed under a benchmark report that reproduce each result (run in the repository).
import { join } from 'node:path';
import type { ScenarioResult } from '../harness/scenario.js';
import { resultKey } from './load-results.js';

/** The command lines that reproduce each result, from its recorded options. */
export function rerunCommands(results: readonly ScenarioResult[], resultsDir: string, outFile: string): string[] {
  const lines = ['npm run build'];
  for (const r of results) {
    const o = r.options;
    const flags = [
      typeof o['rounds'] === 'number' ? `--rounds ${o['rounds']}` : '',
      typeof o['primeMs'] === 'number' ? `--prime ${o['primeMs']}ms` : '',
      typeof o['warmupMs'] === 'number' ? `--warmup ${o['warmupMs']}ms` : '',
      typeof o['durationMs'] === 'number' ? `--duration ${o['durationMs']}ms` : '',
      typeof o['connections'] === 'number' ? `--connections ${o['connections']}` : '',
      typeof o['rateRps'] === 'number' ? `--rate ${o['rateRps']}` : '',
      o['load'] === 'wrk' ? '--load wrk' : '',
      typeof o['baselineCli'] === 'string' ? `--baseline-cli ${o['baselineCli']}` : '',
    ].filter(Boolean);
    lines.push(`npx tessera bench ${r.scenario} ${flags.join(' ')} --json ${join(resultsDir, `${resultKey(r)}.json`)}`);
  }
  lines.push(`npx tessera bench report --in ${resultsDir} --out ${outFile}`);
  return lines;
}
