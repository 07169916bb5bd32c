// Where a YAML flow collection or quoted scalar that is never closed was opened. The parser notices the fault only
// where the next line begins (`forwardTo: [127.0.0.1:8080` is reported on the line after it), so a config error
// pointed at the wrong line; this finds the opener, reading the text as the parser would up to that point.

/** Offset of the `[`, `{`, `"` or `'` still open at `upto`, or undefined. Comments and closed pairs are skipped. */
export function unclosedOpener(text: string, upto: number): number | undefined {
  const open: number[] = [];
  let quote: number | undefined;
  for (let i = 0; i < upto && i < text.length; i++) {
    const c = text[i]!;
    if (quote !== undefined) {
      const q = text[quote]!;
      if (q === "'" && c === "'") {
        if (text[i + 1] === "'") i++; // '' is a quote inside a single-quoted scalar
        else quote = undefined;
      } else if (q === '"' && c === '\\') i++;
      else if (q === '"' && c === '"') quote = undefined;
      continue;
    }
    if (c === '#' && (i === 0 || text[i - 1] === ' ' || text[i - 1] === '\t' || text[i - 1] === '\n')) {
      const eol = text.indexOf('\n', i);
      if (eol < 0) break;
      i = eol;
    } else if (c === '"' || (c === "'" && (i === 0 || /[\s[{,:]/.test(text[i - 1]!)))) quote = i;
    else if (c === '[' || c === '{') open.push(i);
    else if ((c === ']' || c === '}') && open.length > 0) open.pop();
  }
  return quote ?? open.at(-1);
}
