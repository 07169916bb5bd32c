// The command table (cli/commands/) is what every `tessera` process loads: a command's file declares its flags and
// help and imports nothing else, its run is an import() of its module under cli/run/, loaded when it runs. A value
// import there would load that module, and all it imports (the proxy, the control plane, the YAML parser…), for
// every command: `tessera version` loaded 175 modules so. What does load at run time: cli-loads-own-command.test.ts.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { REPO_ROOT } from '../../helpers/run.js';

const DIR = join(REPO_ROOT, 'cli', 'commands');
const files = readdirSync(DIR).filter((f) => f.endsWith('.ts'));
const text = (f: string) => readFileSync(join(DIR, f), 'utf8');

/** What a file loads when it is imported: its imports but `import type` and `import { type A }`, which tsc erases. */
function valueImports(source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(/^\s*(?:import|export)\s+(type\s+)?([^'";]*?)\s*from\s+['"]([^'"]+)['"]/gm)) {
    if (m[1]) continue;
    const names = /^\{([^}]*)\}$/.exec(m[2]!.trim())?.[1];
    if (names?.split(',').every((n) => n.trim() === '' || n.trim().startsWith('type '))) continue;
    out.push(m[3]!);
  }
  for (const m of source.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)) out.push(m[1]!);
  return out;
}

describe('the command table', () => {
  test('is found (the files of cli/commands/)', () => {
    expect(files).toContain('index.ts');
    expect(files.length).toBeGreaterThan(20);
  });

  test.each(files)('cli/commands/%s imports nothing but cli/command.ts (the table: its command files)', (f) => {
    const allowed = (s: string) => s === '../command.js' || (f === 'index.ts' && /^\.\/[\w-]+\.js$/.test(s));
    expect(valueImports(text(f)).filter((s) => !allowed(s))).toEqual([]);
  });

  test.each(files.filter((f) => f !== 'index.ts'))("cli/commands/%s loads its run from cli/run/, with import()", (f) => {
    const loads = [...text(f).matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]!);
    expect(loads.length).toBeGreaterThan(0);
    expect(loads.filter((s) => !/^\.\.\/run\/[\w-]+\.js$/.test(s))).toEqual([]);
  });
});
