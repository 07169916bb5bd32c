// `tessera bench report`: renders `tessera bench --json` results to Markdown with SVG charts (bench/RESULTS.md).
import { type Command, runOnDemand } from '../command.js';

export const benchReportCommand: Command = {
  path: ['bench', 'report'],
  summary: 'Render benchmark JSON results to Markdown tables and SVG charts (e.g. bench/RESULTS.md)',
  usage: '--in DIR|FILE [--in ...] [--out FILE] [--charts DIR]',
  details: 'Reads every *.json in the given directories (or the given files); when a scenario appears more than once, the latest run is used. Charts go to <dir of --out>/charts unless --charts is given.',
  positionals: [0, 16],
  flags: {
    in: { type: 'string', value: 'DIR|FILE', description: 'Results file or directory (repeatable; extra arguments are inputs too)', multiple: true },
    out: { type: 'string', value: 'FILE', description: 'Markdown file to write (default bench/RESULTS.md)' },
    charts: { type: 'string', value: 'DIR', description: 'Directory for the SVG charts (default: charts/ beside --out)' },
  },
  run: runOnDemand(() => import('../run/bench-report.js'), (m) => m.runBenchReport),
};
