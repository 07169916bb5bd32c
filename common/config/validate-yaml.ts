// Parses YAML text and validates it against a Schema, reporting every problem as "file:line:col: key: what".
// Returns plain, deep-frozen data (durations converted to milliseconds, defaults filled in).
import { Composer, type Document, isAlias, isMap, isScalar, isSeq, LineCounter, type Node, type Pair, Parser, type Scalar, type YAMLError, YAMLMap } from 'yaml';
import { formatDuration, parseDuration } from '../duration.js';
import { describeError, TesseraError } from '../errors.js';
import { compileIdPattern } from '../spiffe/match.js';
import { SpiffeId } from '../spiffe/spiffe-id.js';
import { TrustDomain } from '../spiffe/trust-domain.js';
import { escapeControlCharacters } from '../text/control-characters.js';
import { httpUrlProblem } from '../text/http-url.js';
import { withoutUrlCredentials } from '../text/url-credentials.js';
import { addressProblem } from './address.js';
import { MAX_CONFIG_BYTES } from './config-size.js';
import type { ObjectSchema, Schema } from './schema.js';
import { MAX_CONFIG_DEPTH, tooDeepAt } from './yaml-depth.js';
import { keyPathAt } from './yaml-key-path.js';
import { unclosedOpener } from './yaml-unclosed.js';

export interface ConfigProblem {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly key: string;
  readonly message: string;
}

/** One problem as a line; text from the file (keys, values) with its control characters escaped. */
export function formatProblem(p: ConfigProblem): string {
  return escapeControlCharacters(`${p.file}:${p.line}:${p.column}: ${p.key || '(top level)'}: ${p.message}`);
}

export { parseAddress } from './address.js';

class Walker {
  readonly problems: ConfigProblem[] = [];
  constructor(
    private readonly file: string,
    private readonly lines: LineCounter,
  ) {}

  problem(node: Node | null | undefined, key: string, message: string): void {
    const offset = node?.range?.[0] ?? 0;
    const pos = this.lines.linePos(offset);
    this.problems.push({ file: this.file, line: pos.line, column: pos.col, key, message });
  }

  /**
   * An alias (`*name`) is refused as such: the schema walk does not resolve them (their target would be judged as
   * written elsewhere, an alias bomb expanded), and "must be a string" for one that names a string misled.
   */
  alias(node: Node | null | undefined, key: string): boolean {
    if (!isAlias(node)) return false;
    this.problem(node, key, `YAML aliases (*${node.source}) are not supported: write the value out`);
    return true;
  }

  /**
   * A key that is not a plain scalar (`? [a, b]`, `? {a: 1}`, or none at all) is refused as such: read as "" it was
   * reported as `unknown key ""`, which named nothing the operator wrote.
   */
  complexKey(pair: Pair, key: string): boolean {
    // Nothing written (`? ` alone, `: 5`) is a null scalar with no source, which read as the key "null" (audit 62e F3).
    const empty = pair.key === null || (isScalar(pair.key) && pair.key.value === null && pair.key.source === '');
    if (isScalar(pair.key) && !empty) return false;
    if (this.alias(pair.key as Node, key)) return true;
    const written = isSeq(pair.key) ? ' (this one is a list)' : isMap(pair.key) ? ' (this one is a mapping)' : empty ? ' (this one is empty)' : '';
    this.problem((pair.key ?? pair.value) as Node | null, key, `a key must be a plain string${written}`);
    return true;
  }

  value(node: Node | null | undefined, schema: Schema, key: string): unknown {
    if (this.alias(node, key)) return undefined;
    switch (schema.type) {
      case 'object':
        return this.object(node, schema, key);
      case 'map': {
        if (!isMap(node)) return this.problem(node, key, 'must be a mapping');
        const out: Record<string, unknown> = {};
        if (schema.maxKeys !== undefined && node.items.length > schema.maxKeys) this.problem(node, key, `takes at most ${schema.maxKeys} key(s)`);
        for (const pair of node.items) {
          if (this.complexKey(pair, key)) continue;
          const k = String((pair.key as Scalar).value);
          // Assigned, "__proto__" would set the object's prototype rather than be a key.
          if (k === '__proto__') {
            this.problem(pair.key as Node, key ? `${key}.${k}` : k, 'is not a usable name');
            continue;
          }
          const bad = schema.keyCheck?.(k);
          if (bad) {
            this.problem(pair.key as Node, key ? `${key}.${k}` : k, bad);
            continue;
          }
          out[k] = this.value(pair.value as Node, schema.values, key ? `${key}.${k}` : k);
        }
        return out;
      }
      case 'array': {
        if (!isSeq(node)) return this.problem(node, key, 'must be a list');
        if (schema.minItems !== undefined && node.items.length < schema.minItems) this.problem(node, key, `needs at least ${schema.minItems} item(s)`);
        if (schema.maxItems !== undefined && node.items.length > schema.maxItems) this.problem(node, key, `takes at most ${schema.maxItems} item(s)`);
        return node.items.map((item, i) => this.value(item as Node, schema.items, `${key}[${i}]`));
      }
      default:
        return this.scalar(node, schema, key);
    }
  }

  object(node: Node | null | undefined, schema: ObjectSchema, key: string): Record<string, unknown> | undefined {
    if (this.alias(node, key)) return undefined;
    if (!isMap(node)) {
      this.problem(node, key, 'must be a mapping');
      return undefined;
    }
    const out: Record<string, unknown> = {};
    /** The keys written, each with its node (where a problem with it is reported). */
    const seen = new Map<string, Node>();
    for (const pair of node.items) {
      if (this.complexKey(pair, key)) continue;
      const k = String((pair.key as Scalar).value);
      const path = key ? `${key}.${k}` : k;
      // Own keys only: "__proto__" or "constructor" is an unknown key, not Object.prototype's.
      const sub = Object.hasOwn(schema.properties, k) ? schema.properties[k] : undefined;
      if (!sub) {
        const known = Object.keys(schema.properties).join(', ');
        const merge = k === '<<' && isAlias(pair.value);
        this.problem(pair.key as Node, path, merge ? 'YAML merge keys (<<: *name) are not supported: write the keys out' : `unknown key "${k}" (known: ${known})`);
        continue;
      }
      seen.set(k, pair.key as Node);
      out[k] = this.value(pair.value as Node, sub, path);
    }
    const conditional: [string, Schema][] = [];
    for (const [k, sub] of Object.entries(schema.properties)) {
      if (sub.onlyWhen) conditional.push([k, sub]);
      else if (!seen.has(k)) this.absent(node, out, k, sub, key);
    }
    // After the other defaults: a condition may rest on a sibling's default (`kind` unset is `sqlite`).
    for (const [k, sub] of conditional) {
      const when = sub.onlyWhen!;
      const value = out[when.key];
      // A sibling refused already (`kind: mysql`) says nothing about which keys belong.
      if (value === undefined && seen.has(when.key)) continue;
      const at = seen.get(k);
      if (at === undefined) {
        if (value === when.is) this.absent(node, out, k, sub, key);
      } else if (value !== when.is) {
        this.problem(at, key ? `${key}.${k}` : k, `only for ${when.key}: ${when.is}`);
      }
    }
    for (const group of schema.exactlyOneOf ?? []) {
      const present = group.filter((g) => seen.has(g));
      if (present.length !== 1) {
        this.problem(node, key, `exactly one of ${group.join(' / ')} must be set${present.length ? ` (found ${present.join(' and ')})` : ''}`);
      }
    }
    return out;
  }

  /**
   * A key not written: a problem when it is required, otherwise its default (if any) in `out`; a section marked
   * absentAsEmpty is walked as an empty mapping, so it gets exactly the defaults `section: {}` gets.
   */
  absent(node: Node, out: Record<string, unknown>, k: string, sub: Schema, key: string): void {
    if (sub.required) this.problem(node, key ? `${key}.${k}` : k, 'is required');
    else if (sub.type === 'object' && sub.absentAsEmpty) out[k] = this.object(new YAMLMap(), sub, key ? `${key}.${k}` : k);
    else if ('default' in sub && sub.default !== undefined) out[k] = sub.type === 'duration' ? parseDuration(sub.default) : sub.default;
  }

  scalar(node: Node | null | undefined, schema: Exclude<Schema, { type: 'object' | 'map' | 'array' }>, key: string): unknown {
    if (!isScalar(node)) return this.problem(node, key, `must be a ${schema.type === 'duration' ? 'duration' : schema.type}`);
    const v = node.value;
    switch (schema.type) {
      case 'boolean':
        if (typeof v !== 'boolean') return this.problem(node, key, 'must be true or false');
        return v;
      case 'number':
        if (typeof v !== 'number' || !Number.isFinite(v)) return this.problem(node, key, 'must be a number');
        if (schema.integer && !Number.isInteger(v)) return this.problem(node, key, 'must be an integer');
        if (schema.min !== undefined && v < schema.min) return this.problem(node, key, `must be >= ${schema.min}`);
        if (schema.max !== undefined && v > schema.max) return this.problem(node, key, `must be <= ${schema.max}`);
        return v;
      case 'duration': {
        let ms: number;
        try {
          ms = typeof v === 'number' ? v * 1000 : parseDuration(String(v));
        } catch {
          return this.problem(node, key, notADuration(v));
        }
        // YAML's .nan and .inf are numbers too: neither is a duration (NaN passes every comparison below).
        if (!Number.isFinite(ms)) return this.problem(node, key, notADuration(v));
        if (schema.min !== undefined && ms < schema.min) return this.problem(node, key, `must be at least ${exactDuration(schema.min)} (got ${exactDuration(ms)})`);
        const max = schema.max ?? MAX_TIMER_MS;
        if (ms > max) return this.problem(node, key, max === MAX_TIMER_MS ? 'must be at most 24 days (2147483647 ms, the longest timer Node runs)' : `must be at most ${exactDuration(max)} (got ${exactDuration(ms)})`);
        return ms;
      }
      case 'string': {
        // A YAML number or boolean where text is wanted (tlsMinVersion: 1.2, a version, "on"): say how to write it.
        if (typeof v !== 'string') return this.problem(node, key, typeof v === 'number' || typeof v === 'boolean' ? `must be a string: write it in quotes, "${String(isScalar(node) ? (node.source ?? v) : v)}"` : 'must be a string');
        if (schema.minLength !== undefined && v.length < schema.minLength) return this.problem(node, key, 'must not be empty');
        if (schema.enum && !schema.enum.includes(v)) return this.problem(node, key, `must be one of ${schema.enum.join(', ')} (got "${v}")`);
        const bad = checkFormat(schema.format, v) ?? schema.check?.(v) ?? null;
        if (bad) return this.problem(node, key, bad);
        return v;
      }
    }
  }
}

/** The catalogue's code for a malformed duration in the line, as a command-line flag's line names it. */
function notADuration(v: unknown): string {
  return `"${String(v)}" is not a duration (TESSERA_ERR_CONFIG_BAD_DURATION: use e.g. 500ms, 60s, 15m, 1h30m)`;
}

function checkFormat(format: string | undefined, v: string): string | null {
  switch (format) {
    case 'address': {
      const problem = addressProblem(v);
      return problem === null ? null : `"${v}" ${problem}`;
    }
    case 'spiffe-id': {
      const r = SpiffeId.tryParse(v);
      return r.ok ? null : `"${v}" is not a SPIFFE ID (${r.error.code}: ${r.error.message})`;
    }
    case 'id-pattern':
      try {
        compileIdPattern(v);
        return null;
      } catch (e) {
        return `"${v}" is not a SPIFFE ID pattern (${describeError(e)})`;
      }
    case 'trust-domain':
      try {
        TrustDomain.parse(v);
        return null;
      } catch (e) {
        return `"${v}" is not a trust domain (${describeError(e)})`;
      }
    case 'url': {
      // Every URL key is an HTTP endpoint (OTLP, the Kubernetes API, a bundle endpoint): ftp:, file: and the like
      // parse as URLs and would fail later, silently; so would a URL the parser repairs (a newline, port 0).
      const problem = httpUrlProblem(v);
      return problem === null ? null : `"${escapeControlCharacters(withoutUrlCredentials(v))}" ${problem}`;
    }
    default:
      return null;
  }
}

/** A key path as the schema's messages write it: `inbound[0].mtls`, so one key reads the same in every message. */
export function keyText(path: readonly (string | number)[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? p : `.${p}`;
  return out;
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object') {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

export interface ParsedYaml<T> {
  readonly value: T;
  readonly document: Document;
  readonly lineCounter: LineCounter;
}

export { MAX_CONFIG_BYTES };

/**
 * Node's timers take at most 2^31-1 ms (24.8 days); a longer delay fires after 1 ms. A duration key without its own
 * `max` is bounded by this (lifetimes, which are not timers, set theirs).
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Throws TESSERA_ERR_CONFIG_UNREADABLE for YAML syntax errors, TESSERA_ERR_CONFIG_INVALID for schema problems. */
export function parseYamlConfig<T>(text: string, file: string, schema: ObjectSchema): ParsedYaml<T> {
  // Bytes, as the message says and the file readers count: a character of a multibyte script is 2 to 4 of them.
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_CONFIG_BYTES) throw new TesseraError('TESSERA_ERR_CONFIG_INVALID', `${file}:1: the file is ${bytes} bytes, a config is at most ${MAX_CONFIG_BYTES}`, { file, line: 1 });
  const lineCounter = new LineCounter();
  const tokens = Array.from(new Parser(lineCounter.addNewLine).parse(text));
  const deep = tooDeepAt(tokens, MAX_CONFIG_DEPTH);
  if (deep !== undefined) {
    const at = lineCounter.linePos(deep);
    throw new TesseraError('TESSERA_ERR_CONFIG_UNREADABLE', `${file}:${at.line}:${at.col}: YAML: nested deeper than ${MAX_CONFIG_DEPTH} levels of maps and lists (the most a config file takes)`, { file, line: at.line });
  }
  // Composed as parseDocument does, from the tokens already read; forced, there is always a first document.
  const documents = Array.from(new Composer({ uniqueKeys: true }).compose(tokens, true, text.length));
  const document = documents[0]!;
  if (document.errors.length > 0) throw syntaxError(text, file, lineCounter, document.errors[0]!, document);
  const second = documents[1];
  if (second !== undefined) {
    const start = second.range[0];
    const at = lineCounter.linePos(start);
    const marker = text.startsWith('---', start) ? ' (---)' : '';
    throw new TesseraError('TESSERA_ERR_CONFIG_UNREADABLE', `${file}:${at.line}:${at.col}: YAML: a second document starts here${marker}: a config file holds one YAML document`, { file, line: at.line });
  }
  const walker = new Walker(file, lineCounter);
  const value = walker.object(document.contents as Node, schema, '');
  if (walker.problems.length > 0) {
    const shown = walker.problems.slice(0, 10).map(formatProblem);
    const more = walker.problems.length > 10 ? `\n(and ${walker.problems.length - 10} more)` : '';
    const first = walker.problems[0]!;
    throw new TesseraError('TESSERA_ERR_CONFIG_INVALID', `${shown.join('\n')}${more}`, {
      file,
      line: first.line,
      key: first.key,
      problems: walker.problems,
    });
  }
  return { value: deepFreeze(value as T), document, lineCounter };
}

/**
 * What a section written empty validates to: its keys' defaults (deep-frozen), for code that needs the defaults
 * without a file (DEFAULT_ROUTING) and must not write them out again. Throws if the section cannot be empty.
 */
export function defaultsOf<T>(schema: ObjectSchema): T {
  const walker = new Walker('(defaults)', new LineCounter());
  const value = walker.object(new YAMLMap(), schema, '');
  if (walker.problems.length > 0) throw new Error(`a schema that cannot be written empty: ${walker.problems.map(formatProblem).join('; ')}`);
  return deepFreeze(value as T);
}

/**
 * Validates one node already parsed (e.g. one document of a multi-document stream) and returns the problems
 * instead of throwing; the value is deep-frozen and only present when there is no problem.
 */
export function validateYamlNode<T>(node: Node | null | undefined, schema: ObjectSchema, file: string, lineCounter: LineCounter): { value: T | undefined; problems: ConfigProblem[] } {
  const walker = new Walker(file, lineCounter);
  const value = walker.object(node, schema, '');
  return { value: walker.problems.length === 0 ? deepFreeze(value as T) : undefined, problems: walker.problems };
}

/**
 * Line of a key path ("inbound.0.listen") in a parsed document, for errors found after schema validation. A key
 * not in the file (a default) is at the line of its nearest written parent, never line 1 of a file it is not in.
 */
export function lineOf(parsed: ParsedYaml<unknown>, path: readonly (string | number)[]): number {
  const line = (n: Node | null | undefined) => parsed.lineCounter.linePos(n?.range?.[0] ?? 0).line;
  const node = parsed.document.getIn(path, true) as Node | undefined;
  if (node?.range) return line(node);
  for (let n = path.length - 1; n > 0; n--) {
    const parent = parsed.document.getIn(path.slice(0, n - 1), true);
    const step = path[n - 1];
    if (isMap(parent)) {
      const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === String(step));
      if (pair) return line(pair.key as Node);
    } else if (isSeq(parent) && typeof step === 'number' && parent.items[step]) {
      return line(parent.items[step] as Node);
    }
  }
  return 1;
}

/** Whether the file itself sets a key path: a value the schema filled in as a default is not written. */
export function isWritten(parsed: ParsedYaml<unknown>, path: readonly (string | number)[]): boolean {
  return parsed.document.hasIn(path);
}

/**
 * A YAML syntax error as TESSERA_ERR_CONFIG_UNREADABLE at file:line:col: for a collection or quote never closed,
 * where it was opened (the parser notices it a line later); for a repeated key, the key.
 */
function syntaxError(text: string, file: string, lines: LineCounter, e: YAMLError, document: Document): TesseraError {
  const at = lines.linePos(e.pos[0]);
  const first = e.message.split('\n')[0];
  const unclosed = e.code === 'MISSING_CHAR' || (e.code === 'BAD_INDENT' && /^Flow (sequence|map)/.test(first ?? '')) ? unclosedOpener(text, e.pos[0]) : undefined;
  if (unclosed !== undefined) {
    const from = lines.linePos(unclosed);
    const what = text[unclosed] === '[' ? 'a flow sequence ([)' : text[unclosed] === '{' ? 'a flow map ({)' : `a quoted value (${text[unclosed]})`;
    return new TesseraError('TESSERA_ERR_CONFIG_UNREADABLE', `${file}:${from.line}:${from.col}: YAML: ${what} opened here is never closed (noticed at line ${at.line})`, { file, line: from.line });
  }
  const leaf = duplicateKey(text, e);
  if (leaf !== undefined) {
    // The full path (limits.maxHeaders): a leaf as common as `name` or `listen` is in several maps.
    const path = keyPathAt(document, e.pos[0]);
    const key = path === undefined ? leaf : keyText(path);
    return new TesseraError('TESSERA_ERR_CONFIG_UNREADABLE', escapeControlCharacters(`${file}:${at.line}:${at.col}: YAML: the key ${key} appears twice in the same map`), { file, line: at.line, key });
  }
  return new TesseraError('TESSERA_ERR_CONFIG_UNREADABLE', escapeControlCharacters(`${file}:${at.line}:${at.col}: YAML: ${first}`), { file, line: at.line });
}

/** For the parser's "Map keys must be unique" error: the key, as written, that appears twice; else undefined. */
export function duplicateKey(text: string, e: YAMLError): string | undefined {
  if (e.code !== 'DUPLICATE_KEY') return undefined;
  const eol = text.indexOf('\n', e.pos[0]);
  return /^\s*("[^"]*"|'[^']*'|[^:#]*?)\s*:/.exec(text.slice(e.pos[0], eol < 0 ? undefined : eol))?.[1] ?? text.slice(e.pos[0], e.pos[1]);
}

/** A duration as written in a config (1h, 90s, 1500ms), never rounded: a bound and the value it refuses stay apart. */
function exactDuration(ms: number): string {
  return ms >= 1_000 && ms % 1_000 === 0 ? formatDuration(ms) : `${ms}ms`;
}
