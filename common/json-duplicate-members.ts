// Finds a member name repeated within one object of a JSON text, at any depth, names compared after unescaping
// ("\u0061lg" is "alg"). JSON.parse keeps the last copy of a repeated member while other parsers keep the first or
// refuse: a JWT header or claims set read one way here and another way by a relying party is a parser differential,
// so RFC 7515 §4 / RFC 7519 §4 let a JWT whose header or claims repeat a name be rejected, and Tessera rejects it.

/**
 * The first member name that occurs twice in one object of `text`, or undefined. `text` must be JSON that
 * JSON.parse accepted: this scanner relies on that and checks nothing else. Iterative, so depth costs no stack.
 */
export function repeatedJsonMember(text: string): string | undefined {
  // One entry per open container: the names seen so far of an object (and whether a name comes next), or an array.
  const open: ({ readonly names: Set<string>; nameNext: boolean } | 'array')[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '{') open.push({ names: new Set(), nameNext: true });
    else if (c === '[') open.push('array');
    else if (c === '}' || c === ']') open.pop();
    else if (c === ',') {
      const top = open.at(-1);
      if (top !== undefined && top !== 'array') top.nameNext = true;
    } else if (c === '"') {
      const start = i;
      for (i++; text[i] !== '"'; i++) if (text[i] === '\\') i++;
      const top = open.at(-1);
      if (top === undefined || top === 'array' || !top.nameNext) continue;
      top.nameNext = false;
      const name = JSON.parse(text.slice(start, i + 1)) as string;
      if (top.names.has(name)) return name;
      top.names.add(name);
    }
  }
  return undefined;
}
