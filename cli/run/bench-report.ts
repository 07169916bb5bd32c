// `tessera bench report`: renders `tessera bench --json` results to Markdown with SVG charts (bench/RESULTS.md).
import { basename, dirname, join, relative, resolve } from 'node:path';
import { TesseraError } from '../../common/errors.js';
import { stringFlag, type ParsedArgs } from '../args.js';
import { type CommandIo, EXIT_OK } from '../command.js';
import { loadHarness } from '../load-harness.js';
import { prepareOutDir, writeOutFile } from '../output-files.js';

export async function runBenchReport(args: ParsedArgs, io: CommandIo): Promise<number> {
  const inputs = [...((args.flags['in'] as string[] | undefined) ?? []), ...args.positionals].map((p) => resolve(io.cwd, p));
  if (inputs.length === 0) throw new TesseraError('TESSERA_ERR_CLI_USAGE', 'give at least one --in DIR|FILE');
  const out = resolve(io.cwd, stringFlag(args, 'out') ?? 'bench/RESULTS.md');
  const chartsDir = resolve(io.cwd, stringFlag(args, 'charts') ?? join(dirname(out), 'charts'));
  // Both places are made and checked before anything is read or rendered: a bad one is told first, with its flag.
  await prepareOutDir('out', dirname(out), [basename(out)]);
  await prepareOutDir('charts', chartsDir, []);
  // The report code is bench code: loaded when this command runs, never by the sidecar.
  const [{ loadResults, resultKey }, { renderReport }, { rerunCommands }] = await loadHarness('tessera bench report', () =>
    Promise.all([import('../../bench/report/load-results.js'), import('../../bench/report/render-markdown.js'), import('../../bench/report/rerun-commands.js')]),
  );
  const results = await loadResults(inputs);
  const resultsDir = relative(io.cwd, inputs[0]!) || basename(inputs[0]!);
  const { markdown, charts } = renderReport(results, {
    chartsDir: relative(dirname(out), chartsDir) || '.',
    generatedAt: new Date(io.clock.nowMs()).toISOString(),
    commands: rerunCommands(results, resultsDir.endsWith('.json') ? dirname(resultsDir) : resultsDir, relative(io.cwd, out)),
  });
  for (const c of charts) await writeOutFile('charts', join(chartsDir, c.file), c.svg, 0o644);
  await writeOutFile('out', out, markdown, 0o644);
  io.stdout(`wrote ${relative(io.cwd, out)} (${results.length} results: ${results.map(resultKey).join(', ')}) and ${charts.length} charts in ${relative(io.cwd, chartsDir)}\n`);
  return EXIT_OK;
}
