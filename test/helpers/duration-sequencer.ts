// The order test files start in: the longest first, by the seconds each took in a recorded run
// (file-durations.json), so two workers finish together instead of one running a minute-long integration file
// alone at the end. Vitest does this itself from its cache, which a fresh clone (CI) does not have; files the record
// does not know (new ones) go first, as vitest puts unknown files first too. Refresh the record from a run's JSON
// report: `node test/helpers/record-durations.mjs .ci/out/vitest.json`.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

const RECORDED: Readonly<Record<string, number>> = JSON.parse(readFileSync(new URL('./file-durations.json', import.meta.url), 'utf8')) as Record<string, number>;

export class DurationSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const root = this.ctx.config.root;
    // Files under a second are not recorded: 0.5 s puts them after every recorded one.
    const seconds = (f: TestSpecification) => RECORDED[relative(root, f.moduleId)] ?? (isNew(relative(root, f.moduleId)) ? Number.POSITIVE_INFINITY : 0.5);
    return [...files].sort((a, b) => seconds(b) - seconds(a));
  }
}

/** An integration or end-to-end file the record lacks is taken as new (and maybe long); a unit file as short. */
function isNew(file: string): boolean {
  return !file.startsWith('test/unit/');
}
