// The YAML of `tessera inject`, read as kubectl reads it and within bounds: UTF-8 only, plain scalars typed by
// kubectl's rules (kubectl-yaml-schema.ts), merge keys (<<) resolved, aliases expanded and duplicate keys found by
// one linear walk that refuses cycles and "billion laughs" documents; every refusal is coded (audit 38b, F4, F6).
// The library's own alias handling refused a 101st use of one anchor without a code, passed a recursive alias on as
// a circular object and looked each alias up in a scan of the document; its duplicate-key check compares each key
// with all before it: both quadratic (20 000 anchors and aliases took 21 s, a ConfigMap of 40 000 keys 20 s).
import { isUtf8 } from 'node:buffer';
import { Document, isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, Scalar, visit } from 'yaml';
import { TesseraError } from '../../../common/errors.js';
import { kubectlCompatTags, kubectlReadTags } from './kubectl-yaml-schema.js';

/**
 * Nodes one document's aliases may add, expanded, in all: a real manifest shares a few small blocks (an env list,
 * labels), a "billion laughs" document asks for 10^9. kubectl's YAML library has a bound of the same kind.
 */
export const MAX_ALIAS_EXPANSION = 100_000;

function refuse(message: string): TesseraError {
  return new TesseraError('TESSERA_ERR_INJECT_NOT_A_POD', message);
}

/** The manifest as text; bytes that are not UTF-8 are refused (kubectl refuses them too), never replaced by U+FFFD. */
export function manifestText(input: string | Uint8Array): string {
  if (typeof input === 'string') return input;
  const bytes = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  if (isUtf8(bytes)) return bytes.toString('utf8');
  if (bytes.length >= 2 && ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff))) {
    throw refuse('the manifest is not UTF-8 text: it starts with a UTF-16 byte-order mark; convert it to UTF-8 (iconv -f UTF-16 -t UTF-8)');
  }
  // A newline byte is never inside a UTF-8 sequence, so the first line that is not UTF-8 is the one to name.
  let line = 1;
  for (let start = 0; start <= bytes.length; line++) {
    const nl = bytes.indexOf(0x0a, start);
    const end = nl === -1 ? bytes.length : nl;
    if (!isUtf8(bytes.subarray(start, end))) break;
    start = end + 1;
  }
  throw refuse(`the manifest is not UTF-8 text: line ${line} holds bytes that are not UTF-8 (Latin-1? convert it with iconv -t UTF-8)`);
}

interface Anchor {
  readonly node: unknown;
  /** Still being walked: an alias to it now is inside it. */
  open: boolean;
  /** Nodes it holds once expanded. */
  size: number;
}

/**
 * Replaces every alias by the node its anchor names (the last one before it, as YAML says), so that toJS makes a
 * copy per use; counts what that adds, and refuses an alias inside its own anchor or without one, and a map key
 * given twice (kubectl refuses those too).
 */
function expandAliases(doc: Document, document: number, lines: LineCounter): void {
  const anchors = new Map<string, Anchor>();
  let added = 0;
  const where = (at: unknown): string => {
    const offset = isAlias(at) || isScalar(at) || isMap(at) || isSeq(at) ? at.range?.[0] : undefined;
    if (offset === undefined) return '';
    const { line, col } = lines.linePos(offset);
    return ` at line ${line}, column ${col}`;
  };
  const checkKey = (seen: Set<string>, key: unknown, at: unknown): void => {
    // A merge key (<<) is a symbol, and may be given more than once.
    if (isScalar(key) && typeof key.value === 'symbol') return;
    if (isMap(key) || isSeq(key)) throw refuse(`document ${document} is not valid YAML for Kubernetes: a map key${where(at)} is a collection, not text`);
    // As the object will hold it: 1 and "1" are one key there, and the second would silently replace the first.
    const text = !isScalar(key) || key.value === null || key.value === undefined ? '' : String(key.value);
    if (!seen.has(text)) {
      seen.add(text);
      return;
    }
    throw refuse(`document ${document} is not valid YAML: map key "${text.slice(0, 80)}" is given twice${where(at)}`);
  };
  const walk = (node: unknown): { node: unknown; size: number } => {
    if (isAlias(node)) {
      const anchor = anchors.get(node.source);
      if (anchor === undefined) throw refuse(`document ${document}: alias *${node.source} has no anchor &${node.source} before it`);
      if (anchor.open) throw refuse(`document ${document}: alias *${node.source} is inside its own anchor (a recursive alias): the document has no finite value`);
      added += anchor.size;
      if (added > MAX_ALIAS_EXPANSION) {
        throw refuse(`document ${document}: its aliases expand to more than ${MAX_ALIAS_EXPANSION} nodes (a bound against "billion laughs" documents); write the repeated parts out`);
      }
      return { node: anchor.node, size: anchor.size };
    }
    if (!isScalar(node) && !isMap(node) && !isSeq(node)) return { node, size: 0 };
    const anchor: Anchor | undefined = node.anchor ? { node, open: true, size: 0 } : undefined;
    if (anchor && node.anchor) anchors.set(node.anchor, anchor);
    let size = 1;
    if (!isScalar(node)) {
      const items = node.items as unknown[];
      const seen = new Set<string>();
      for (let i = 0; i < items.length; i++) {
        const item = items[i];
        if (isPair(item)) {
          const key = walk(item.key);
          if (isMap(node)) checkKey(seen, key.node, item.key);
          const value = walk(item.value);
          item.key = key.node;
          item.value = value.node;
          size += key.size + value.size;
        } else {
          const r = walk(item);
          items[i] = r.node;
          size += r.size;
        }
      }
    }
    if (anchor) {
      anchor.open = false;
      anchor.size = size;
    }
    return { node, size };
  };
  doc.contents = walk(doc.contents).node as Document['contents'];
}

/** Each document's value (null for an empty one), in order. */
export function readManifest(input: string | Uint8Array): unknown[] {
  const lines = new LineCounter();
  // Duplicate keys are found by the walk below, in linear time. Plain scalars are typed as kubectl types them
  // (yes is a boolean, 017 is 15), or a value would change its type, or the injector misread it (hostNetwork: yes).
  const docs = parseAllDocuments(manifestText(input), { uniqueKeys: false, merge: true, customTags: kubectlReadTags, lineCounter: lines });
  if (!Array.isArray(docs)) throw refuse('the input is not a YAML document stream');
  return docs.map((doc, i) => {
    if (doc.errors.length > 0) throw refuse(`document ${i + 1} is not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
    try {
      expandAliases(doc, i + 1, lines);
      // No alias is left for the library to resolve: 0 makes one an error rather than a silent quadratic lookup.
      return doc.toJS({ maxAliasCount: 0 }) as unknown;
    } catch (e) {
      if (e instanceof TesseraError) throw e;
      // A merge of something that is not a map, nesting deeper than the stack: the library's words, with a code.
      throw refuse(`document ${i + 1} cannot be read: ${(e as Error).message.split('\n')[0]}`);
    }
  });
}

/**
 * One object as YAML again. A string kubectl, a YAML 1.1 or a YAML 1.2 reader would read as anything else ("yes",
 * "0X1F", "1:20", "true") is quoted, or `value: yes` came out a boolean (audit 38g); a key that is the text "<<"
 * too, or a reader with merge keys would merge it.
 */
export function manifestYaml(value: unknown): string {
  const doc = new Document(value, { aliasDuplicateObjects: false, compat: kubectlCompatTags() });
  visit(doc, {
    Pair(_key, pair) {
      if (isScalar(pair.key) && pair.key.value === '<<') pair.key.type = Scalar.QUOTE_DOUBLE;
    },
  });
  return doc.toString({ lineWidth: 0 });
}
