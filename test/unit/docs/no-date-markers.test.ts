// The docs say what a build does, not since when (audit 56c F7): "Before 2026-12-08 …" written the day before told an
// operator nothing, and no build says its date (every one is `tessera --version` 0.1.0). A change of behaviour an
// operator must tell apart is described by something they can check (a metric present, a certificate's dates), and
// measurements keep their dates: only "before / since / until DATE" and "… stop N" markers are refused.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';

const ROOT = new URL('../../../', import.meta.url).pathname;

function markdown(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? markdown(join(dir, e.name)) : e.name.endsWith('.md') ? [join(dir, e.name)] : [],
  );
}

// A date not followed by a time: "until 2026-12-02T01:31:23Z" is a grant's end in an example output.
const MARKER = /\b(before|since|until)\s+(20\d\d-\d\d-\d\d(?!T)|stop\s+\d+)/gi;

test('no doc dates a behaviour by the day it changed', () => {
  const files = [...markdown('docs'), 'README.md'];
  expect(files.length).toBeGreaterThan(15);
  // Over the whole text: a marker may wrap ("Before\n2026-12-07").
  const found = files.flatMap((f) => {
    const text = readFileSync(join(ROOT, f), 'utf8');
    return [...text.matchAll(MARKER)].map((m) => `${f}:${text.slice(0, m.index).split('\n').length}: ${m[0].replace(/\s+/g, ' ')}`);
  });
  expect(found).toEqual([]);
});
