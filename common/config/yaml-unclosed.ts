// Where a YAML flow collection or quoted scalar that is never closed was opened. The parser notices the fault only
// where the next line begins (`forwardTo: [127.0.0.1:8080` is reported on the line after it), so a config error
// pointed at the wrong line; this finds the opener, reading the text as the parser would up to that point: comments,
// closed pairs and block scalars (`|`, `>`: their lines are text, brackets and quotes included) are skipped.

/** A block scalar indicator (`|`, `>`, with chomping and indentation indicators) ending its line. */
const BLOCK_HEADER = /^[|>][+\-0-9]*[ \t]*(?:#.*)?$/;

/** Offset of the `[`, `{`, `"` or `'` still open at `upto`, or undefined. */
export function unclosedOpener(text: string, upto: number): number | undefined {
  const open: number[] = [];
  let quote: number | undefined;
  let lineIndent = 0;
  /** The indentation of the line that opened a block scalar: deeper (or blank) lines after it are its text. */
  let blockIndent = -1;
  const end = Math.min(upto, text.length);
  for (let i = 0; i < end; i++) {
    const c = text[i]!;
    if ((i === 0 || text[i - 1] === '\n') && quote === undefined && open.length === 0) {
      let j = i;
      while (text[j] === ' ') j++;
      const blank = text[j] === '\n' || j >= text.length;
      if (blockIndent >= 0 && (blank || j - i > blockIndent)) {
        const eol = text.indexOf('\n', i);
        if (eol < 0) break;
        i = eol;
        continue;
      }
      blockIndent = -1;
      lineIndent = j - i;
    }
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
      i = eol - 1;
    } else if ((c === '|' || c === '>') && open.length === 0 && /(?:^|[:-])[ \t]*$/.test(text.slice(text.lastIndexOf('\n', i - 1) + 1, i))) {
      const eol = text.indexOf('\n', i);
      if (BLOCK_HEADER.test(text.slice(i, eol < 0 ? undefined : eol))) {
        blockIndent = lineIndent;
        if (eol < 0) break;
        i = eol - 1;
      }
    } else if (c === '"' || (c === "'" && (i === 0 || /[\s[{,:]/.test(text[i - 1]!)))) quote = i;
    else if (c === '[' || c === '{') open.push(i);
    else if ((c === ']' || c === '}') && open.length > 0) open.pop();
  }
  return quote ?? open.at(-1);
}
