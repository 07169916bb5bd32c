// The path of a key in a composed YAML document, found by where the key is written: the parser's "Map keys must be
// unique" names a place, not a key, and the leaf alone (`maxHeaders`) leaves the operator to find which map it is in.
import { type Document, isMap, isScalar, isSeq, type Node } from 'yaml';

/** Path (`['limits', 'maxHeaders']`, `['inbound', 0, 'name']`) of the map key written at `offset`, else undefined. */
export function keyPathAt(document: Document, offset: number): (string | number)[] | undefined {
  // Its own stack, not recursion: depth is bounded before composing (yaml-depth.ts), but this need not rely on it.
  const pending: [unknown, (string | number)[]][] = [[document.contents, []]];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [node, path] = next;
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = pair.key as Node | null;
        if (!isScalar(key)) continue;
        const at = [...path, String(key.value)];
        if (key.range?.[0] === offset) return at;
        pending.push([pair.value, at]);
      }
    } else if (isSeq(node)) {
      for (const [i, item] of node.items.entries()) pending.push([item, [...path, i]]);
    }
  }
  return undefined;
}
