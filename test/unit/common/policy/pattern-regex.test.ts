import { describe, expect, test } from 'vitest';
import { anyOf, idPatternSource, pathPatternSource } from '../../../../common/policy/pattern-regex.js';
import { SelectorIndex } from '../../../../common/policy/selector-index.js';
import { compileIdPattern, compilePathPattern } from '../../../../common/spiffe/match.js';
import { SpiffeId } from '../../../../common/spiffe/spiffe-id.js';

// A small deterministic generator: few segment values, so patterns and IDs collide often.
function rng(seed: number) {
  let s = seed >>> 0;
  return (n: number) => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s % n;
  };
}
const SEGS = ['a', 'b', 'a.b', 'ns', 'x-y'];
const TDS = ['ex.org', 'ex.org.evil', 'other.org'];

function genIds(r: (n: number) => number, count: number): string[] {
  return Array.from({ length: count }, () => {
    const len = r(5);
    return `spiffe://${TDS[r(TDS.length)]}${Array.from({ length: len }, () => `/${SEGS[r(SEGS.length)]}`).join('')}`;
  });
}
function genIdPatterns(r: (n: number) => number, count: number): string[] {
  return Array.from({ length: count }, () => {
    const len = r(4);
    const segs = Array.from({ length: len }, () => (r(3) === 0 ? '*' : SEGS[r(SEGS.length)]!));
    if (r(3) === 0) segs.push('**');
    return `spiffe://${TDS[r(2)]}${segs.map((s) => `/${s}`).join('')}`;
  });
}

describe('pattern regexes agree with common/spiffe/match.ts', () => {
  const r = rng(42);
  const ids = genIds(r, 300).map((t) => SpiffeId.parse(t));
  const patterns = genIdPatterns(r, 300);
  test('ID patterns', () => {
    let matched = 0;
    const disagreements: string[] = [];
    for (const p of patterns) {
      const slow = compileIdPattern(p);
      const fast = anyOf([idPatternSource(p)])!;
      for (const id of ids) {
        const want = slow.matches(id);
        if (fast.test(id.toString()) !== want) disagreements.push(`${p} vs ${id}`);
        if (want) matched++;
      }
    }
    expect(disagreements).toEqual([]);
    expect(matched).toBeGreaterThan(500);
  });
  test('path patterns (segments may be empty: trailing "/")', () => {
    const paths = ['/', '/a', '/a/', '/a/b', '/a/b/', '/a.b', '/ab', '/a/b/c', '/ns/a.b/x-y', '/a//b', '/x-y/'];
    const pats = ['/', '/a', '/a/', '/*', '/**', '/a/*', '/a/**', '/*/b', '/*/*/**', '/a.b', '/ns/*/x-y', '/a/b/**', '/*/'];
    for (const p of pats) {
      const slow = compilePathPattern(p);
      const fast = anyOf([pathPatternSource(p)])!;
      for (const path of paths) expect(fast.test(path), `${p} vs ${path}`).toBe(slow.matches(path));
    }
  });
  test('regex metacharacters in literals are literal', () => {
    expect(anyOf([idPatternSource('spiffe://ex.org/a.b')])!.test('spiffe://ex.org/aXb')).toBe(false);
    expect(anyOf([pathPatternSource('/v1/(x)+')])!.test('/v1/xx')).toBe(false);
    expect(anyOf([pathPatternSource('/v1/(x)+')])!.test('/v1/(x)+')).toBe(true);
    expect(anyOf([])).toBeNull();
  });
  test('the selector index finds exactly the matching selectors', () => {
    const index = new SelectorIndex<string>();
    for (const p of patterns) index.add(compileIdPattern(p), p);
    for (const id of ids) {
      const want = patterns.filter((p) => compileIdPattern(p).matches(id)).sort();
      expect(index.select(id, id.toString()).sort(), id.toString()).toEqual(want);
    }
  });
});
