// What `tessera proxy` and `tessera control-plane` load: the modules statically reachable from the CLI entry and
// the two commands' lazy imports (the command's module under cli/run/, and that module's own). The load harness and the benchmarks (bench/, autocannon) must not be among them
// (they load only when `tessera bench`/`tessera load` run), so the sidecar pays neither their RSS nor their start-up.
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import { REPO_ROOT } from '../../helpers/run.js';

/** Value imports of a source file (type-only imports are erased by tsc and load nothing). */
function staticImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^\s*(import|export)\s+(type\s+)?([^'";]*?)\s*from\s+['"]([^'"]+)['"]/gm)) {
    if (m[2]) continue;
    // `import { type A, type B } from` is erased too.
    const names = /^\{([^}]*)\}$/.exec(m[3]!.trim())?.[1];
    if (names?.split(',').every((n) => n.trim() === '' || n.trim().startsWith('type '))) continue;
    out.push(m[4]!);
  }
  for (const m of text.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)) out.push(m[1]!);
  return out;
}

/** `import('x')` calls in a file: loaded when that code runs. */
function dynamicImports(file: string): string[] {
  return [...readFileSync(file, 'utf8').matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]!);
}

const toSource = (from: string, spec: string) => resolve(dirname(from), spec.replace(/\.js$/, '.ts'));

/** Every module reachable by static imports from `roots`: repository files (relative) and packages (bare). */
function reachable(roots: readonly string[]): Set<string> {
  const seen = new Set<string>();
  const queue = [...roots];
  while (queue.length > 0) {
    const file = queue.pop()!;
    const key = relative(REPO_ROOT, file);
    if (seen.has(key)) continue;
    seen.add(key);
    for (const spec of staticImports(file)) {
      if (spec.startsWith('.')) queue.push(toSource(file, spec));
      else seen.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
    }
  }
  return seen;
}

const cli = (p: string) => join(REPO_ROOT, 'cli', p);
const relativeImports = (file: string) => dynamicImports(file).filter((s) => s.startsWith('.')).map((s) => toSource(file, s));
/** What a command loads when it runs: its cli/run/ module (the import() of its command file) and that module's import()s. */
const runRoots = (command: string) => {
  const runs = relativeImports(cli(`commands/${command}.ts`));
  return [...runs, ...runs.flatMap(relativeImports)];
};

describe('modules a sidecar loads', () => {
  // The entry's own imports are dynamic (after the Node version check); follow exactly those.
  const entry = cli('tessera.ts');
  const startup = dynamicImports(entry).map((s) => toSource(entry, s));
  const proxyRun = runRoots('proxy');
  const cpRun = runRoots('control-plane');

  test('the entry loads the command table, which reaches the proxy command', () => {
    expect(startup.map((f) => relative(REPO_ROOT, f))).toContain('cli/commands/index.ts');
    expect(reachable(startup)).toContain('cli/commands/proxy.ts');
  });

  test('`tessera proxy` loads its own command only: not the command table, the X.509 library, the edge or HTTP/2', () => {
    // tessera.ts imports commands/proxy.ts instead of the table when the first word is `proxy`.
    const proxyStartup = startup.filter((f) => !f.endsWith(join('commands', 'index.ts')));
    expect(proxyStartup.map((f) => relative(REPO_ROOT, f))).toContain('cli/commands/proxy.ts');
    const mods = [...reachable([...proxyStartup, ...proxyRun])];
    expect(mods).toContain('proxy/src/main.ts');
    // The listener kinds are imported by main.ts only when the config has them.
    expect(mods.filter((m) => m === 'cli/commands/index.ts' || m === '@peculiar/x509' || m === 'reflect-metadata' || m.startsWith('proxy/src/edge/') || m.startsWith('proxy/src/h2/'))).toEqual([]);
  });

  test.each([
    ['tessera proxy', () => [...startup, ...proxyRun]],
    ['tessera control-plane', () => [...startup, ...cpRun]],
  ])('%s loads nothing from bench/ and not autocannon', (_name, roots) => {
    const mods = reachable(roots());
    expect(mods.size).toBeGreaterThan(20);
    expect([...mods].filter((m) => m === 'proxy/src/main.ts' || m === 'control-plane/src/main.ts')).toHaveLength(1);
    expect([...mods].filter((m) => m.startsWith('bench/') || m === 'autocannon')).toEqual([]);
  });
});
