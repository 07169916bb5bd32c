// Finds the policies whose selector matches a destination without scanning the mesh: exact selectors in a Map,
// wildcard selectors in a per-trust-domain trie of segments ("*" and "**" are edges), so a lookup walks the
// destination's own segments instead of every wildcard selector.
import type { IdPattern } from '../spiffe/match.js';
import type { SpiffeId } from '../spiffe/spiffe-id.js';

interface TrieNode<T> {
  readonly literal: Map<string, TrieNode<T>>;
  one: TrieNode<T> | null;
  /** Patterns ending in "**" here: they match when at least one more segment follows. */
  readonly rest: T[];
  /** Patterns ending exactly here. */
  readonly end: T[];
}

const node = <T>(): TrieNode<T> => ({ literal: new Map(), one: null, rest: [], end: [] });

function collect<T>(n: TrieNode<T>, segs: readonly string[], i: number, out: T[]): void {
  if (i === segs.length) {
    out.push(...n.end);
    return;
  }
  out.push(...n.rest);
  const lit = n.literal.get(segs[i]!);
  if (lit) collect(lit, segs, i + 1, out);
  if (n.one) collect(n.one, segs, i + 1, out);
}

export class SelectorIndex<T> {
  readonly #exact = new Map<string, T[]>();
  readonly #tries = new Map<string, TrieNode<T>>();

  add(selector: IdPattern, value: T): void {
    if (selector.exact) {
      const list = this.#exact.get(selector.source);
      if (list) list.push(value);
      else this.#exact.set(selector.source, [value]);
      return;
    }
    let n: TrieNode<T> | undefined = this.#tries.get(selector.trustDomain);
    if (!n) {
      n = node<T>();
      this.#tries.set(selector.trustDomain, n);
    }
    const afterTd = selector.source.indexOf('/', 'spiffe://'.length);
    const segs = afterTd === -1 ? [] : selector.source.slice(afterTd + 1).split('/');
    for (const seg of segs) {
      if (seg === '**') {
        n.rest.push(value);
        return;
      }
      let next: TrieNode<T> | null | undefined = seg === '*' ? n.one : n.literal.get(seg);
      if (!next) {
        next = node<T>();
        if (seg === '*') n.one = next;
        else n.literal.set(seg, next);
      }
      n = next;
    }
    n.end.push(value);
  }

  /** Every value whose selector matches the ID, in no particular order. */
  select(id: SpiffeId, idText: string): T[] {
    const out = [...(this.#exact.get(idText) ?? [])];
    const trie = this.#tries.get(id.trustDomain.name);
    if (trie) collect(trie, id.segments(), 0, out);
    return out;
  }
}
