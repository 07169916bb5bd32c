// How deeply a YAML text nests its maps and lists, read from the parser's token tree (CST) before the document is
// composed: the composer recurses once per level and, some thousand levels down, runs out of stack ("Maximum call
// stack size exceeded" reached operators as the message). The walk keeps its own stack, so no depth breaks it.
import type { CST } from 'yaml';

/** Levels of maps and lists a config file may nest: far above any real config (they stay under ten). */
export const MAX_CONFIG_DEPTH = 64;

/** Offset of the first map or list nested deeper than `max` levels, or undefined when none is. */
export function tooDeepAt(tokens: readonly CST.Token[], max: number): number | undefined {
  const pending: [CST.Token | undefined, number][] = tokens.map((t) => [t, 0]);
  let first: number | undefined;
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [token, depth] = next;
    if (token === undefined) continue;
    if (token.type === 'document') {
      pending.push([token.value, depth]);
    } else if (token.type === 'block-map' || token.type === 'block-seq' || token.type === 'flow-collection') {
      if (depth >= max) {
        // Every branch is walked: the stack pops in no particular order, and the report names the earliest.
        if (first === undefined || token.offset < first) first = token.offset;
        continue;
      }
      for (const item of token.items) pending.push([item.key ?? undefined, depth + 1], [item.value, depth + 1]);
    }
  }
  return first;
}
