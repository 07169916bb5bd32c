// ID and path patterns as anchored regular expressions for the evaluation hot path: one test per rule instead of a
// split and a segment walk per pattern. Same meaning as common/spiffe/match.ts (a test checks they agree).

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/**
 * Regex source for an ID pattern already validated by compileIdPattern. SPIFFE ID segments are never empty and
 * never hold "/", so "*" is "/[^/]+" and a final "**" (one or more segments) is "/.+".
 */
export function idPatternSource(pattern: string): string {
  const rest = pattern.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const td = slash === -1 ? rest : rest.slice(0, slash);
  let re = escapeRe(`spiffe://${td}`);
  if (slash === -1) return re;
  for (const seg of rest.slice(slash + 1).split('/')) re += seg === '**' ? '\\/.+' : seg === '*' ? '\\/[^/]+' : `\\/${escapeRe(seg)}`;
  return re;
}

/**
 * Regex source for a path pattern already validated by compilePathPattern. A path segment may be empty (a trailing
 * "/"), so "*" is "/[^/]*" and a final "**" (one or more segments, possibly empty) is "/.*".
 */
export function pathPatternSource(pattern: string): string {
  let re = '';
  for (const seg of pattern.slice(1).split('/')) re += seg === '**' ? '\\/.*' : seg === '*' ? '\\/[^/]*' : `\\/${escapeRe(seg)}`;
  return re;
}

/** One anchored alternation of every source, or null for none. */
export function anyOf(sources: readonly string[]): RegExp | null {
  return sources.length === 0 ? null : new RegExp(`^(?:${sources.join('|')})$`);
}
