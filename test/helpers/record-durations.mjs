// Writes test/helpers/file-durations.json from a vitest JSON report (`.ci/run` leaves one in .ci/out/vitest.json):
// the seconds each test file took, for files of a second or more, longest first.
import { readFileSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';

const report = JSON.parse(readFileSync(process.argv[2] ?? '.ci/out/vitest.json', 'utf8'));
const rows = report.testResults
  .map((t) => [relative(process.cwd(), t.name), Math.round((t.endTime - t.startTime) / 100) / 10])
  .filter(([, s]) => s >= 1)
  .sort((a, b) => b[1] - a[1]);
writeFileSync(new URL('./file-durations.json', import.meta.url), `${JSON.stringify(Object.fromEntries(rows), null, 1)}\n`);
console.log(`${rows.length} files recorded`);
