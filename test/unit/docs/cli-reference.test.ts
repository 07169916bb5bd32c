// docs/cli.md against the command table (cli/commands/index.ts): every command has a section with its usage
// line as the code declares it, and a row for every flag (marked required where it is); nothing undeclared.
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { COMMANDS } from '../../../cli/commands/index.js';

const doc = readFileSync(new URL('../../../docs/cli.md', import.meta.url), 'utf8');

/** Sections by their `### \`tessera …\`` heading. */
function commandSections(): Map<string, string> {
  const out = new Map<string, string>();
  const parts = doc.split(/^### /m).slice(1);
  for (const part of parts) {
    const m = /^`tessera ([^`]+)`\s*\n/.exec(part);
    if (!m) continue;
    const body = part.split(/^## /m)[0]!;
    expect(out.has(m[1]!), `${m[1]} is documented once`).toBe(false);
    out.set(m[1]!, body);
  }
  return out;
}

/** Flag rows of a section: "| `--name VALUE` | meaning |" → name → row. */
function flagRows(section: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of section.split('\n')) {
    const m = /^\| `--([a-z][a-z0-9-]*)[^`]*` \|/.exec(line);
    if (m) out.set(m[1]!, line);
  }
  return out;
}

describe('docs/cli.md', () => {
  const sections = commandSections();

  test('has a section for every command, and only for commands', () => {
    const names = COMMANDS.map((c) => c.path.join(' '));
    expect(names.filter((n) => !sections.has(n))).toEqual([]);
    expect([...sections.keys()].filter((n) => !names.includes(n))).toEqual([]);
  });

  for (const cmd of COMMANDS) {
    const name = cmd.path.join(' ');
    test(`tessera ${name}: usage line and every flag`, () => {
      const section = sections.get(name);
      expect(section, `section for tessera ${name}`).toBeDefined();
      expect(section).toContain(`\n${`tessera ${name} ${cmd.usage}`.trimEnd()}\n`);
      const rows = flagRows(section!);
      for (const [flag, spec] of Object.entries(cmd.flags)) {
        const row = rows.get(flag);
        expect(row, `--${flag} of tessera ${name}`).toBeDefined();
        if (spec.required) expect(row, `--${flag} of tessera ${name} is marked required`).toContain('(required)');
        else expect(row, `--${flag} of tessera ${name} is not required`).not.toContain('(required)');
      }
      expect([...rows.keys()].filter((f) => !(f in cmd.flags)), `undeclared flags documented for tessera ${name}`).toEqual([]);
    });
  }

  test('states the exit codes', () => {
    expect(doc).toMatch(/\*\*0\*\* ok, \*\*1\*\* failure/);
    expect(doc).toContain('**2** usage');
  });
});
