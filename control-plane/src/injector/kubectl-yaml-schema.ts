// Which plain scalars kubectl reads as something other than text, as yaml library tags (audit 38g). kubectl reads
// YAML with sigs.k8s.io/yaml over go-yaml v2: YAML 1.1's booleans (yes, no, on, off, y, n...), and numbers as Go's
// strconv reads them once every "_" is dropped (017 is octal, 0X1F and +0o17 are numbers, 1_000 is 1000); its
// timestamps stay text. `tessera inject` reads a manifest with these tags, so each value is what kubectl makes of
// it, and writes with them and YAML 1.1's as the library's `compat` schema: a string any of those readers (or a
// YAML 1.2 one) would take for something else is quoted, and nothing else changes.
import { type ScalarTag, Schema, type Tags } from 'yaml';

const TAG = (name: string) => `tag:yaml.org,2002:${name}`;

/** One digit of the class and the "_"s after it: go-yaml drops them all before it reads a number. */
const digits = (cls: string) => `(?:${cls}_*)+`;
const SIGN = '(?:[-+]_*)?';
const DECIMAL = `(?:\\._*${digits('[0-9]')}|${digits('[0-9]')}(?:\\._*(?:[0-9]_*)*)?)(?:[eE]_*${SIGN}${digits('[0-9]')})?`;
/**
 * What go-yaml v2 reads as a number: after a sign or digit, Go's ParseInt/ParseUint with base 0 (0x, 0o, 0b in
 * either case, a leading 0 for octal, a sign before any) or its float pattern, "_" anywhere; after a ".", only
 * ParseFloat of the text as written; and its table of .inf/.nan spellings. Linear: each repetition starts with a digit.
 */
const GO_NUMBER = new RegExp(
  `^(?:(?=[-+0-9])${SIGN}(?:0_*[xX]_*${digits('[0-9a-fA-F]')}|0_*[oO]_*${digits('[0-7]')}|0_*[bB]_*${digits('[01]')}|${DECIMAL})` +
    '|\\.[0-9]+(?:[eE][-+]?[0-9]+)?|[-+]?\\.(?:inf|Inf|INF)|\\.(?:nan|NaN|NAN))$',
);

const UINT64_MAX = 2n ** 64n - 1n;
const INT64_MAX = 2n ** 63n - 1n;

/**
 * The value go-yaml gives a GO_NUMBER text. An integer with a base prefix out of Go's int64/uint64 range stays text
 * (every parse failed); a leading-0 one out of range is read as a decimal float (Go's float pattern matches it).
 */
function goNumber(text: string): number | string {
  if (/^[-+]?\.(?:inf|Inf|INF)$/.test(text)) return text.startsWith('-') ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  if (/^\.(?:nan|NaN|NAN)$/.test(text)) return Number.NaN;
  const plain = text.replaceAll('_', '');
  const sign = plain[0] === '-' || plain[0] === '+' ? plain[0] : '';
  const body = plain.slice(sign.length);
  const prefixed = /^0([xob])(.+)$/i.exec(body);
  const octal = /^0([0-7]+)$/.exec(body);
  if (!prefixed && !octal) return Number(plain);
  const n = BigInt(prefixed ? `0${prefixed[1]!.toLowerCase()}${prefixed[2]}` : `0o${octal![1]}`);
  // ParseInt takes a sign up to int64 (its minimum one further); ParseUint takes no sign, up to uint64.
  if (n > (sign === '-' ? INT64_MAX + 1n : sign === '+' ? INT64_MAX : UINT64_MAX)) return prefixed ? text : Number(plain);
  return sign === '-' ? -Number(n) : Number(n);
}

const goInt: ScalarTag = Object.freeze({
  default: true,
  tag: TAG('int'),
  test: GO_NUMBER,
  resolve: goNumber,
});
/** The same reading, for an explicit !!float. */
const goFloat: ScalarTag = Object.freeze({ ...goInt, tag: TAG('float') });

const yaml11 = (): Tags => new Schema({ schema: 'yaml-1.1' }).tags;

/**
 * The `customTags` of the manifest reader (over the core schema): its collections, strings and nulls (go-yaml's
 * nulls are YAML 1.2's: ~, null, Null, NULL, empty), YAML 1.1's booleans (go-yaml's list, y and n included), and
 * go-yaml's numbers in place of YAML 1.2's.
 */
export function kubectlReadTags(core: Tags): Tags {
  const kept = new Set([TAG('map'), TAG('seq'), TAG('str'), TAG('null')]);
  const bools = yaml11().filter((t) => typeof t === 'object' && t.tag === TAG('bool'));
  return [...core.filter((t) => typeof t === 'object' && kept.has(t.tag)), ...bools, goInt, goFloat];
}

/**
 * The `compat` schema of the manifest writer: a string that YAML 1.1 (booleans, 0-octal, sexagesimal 1:20,
 * timestamps, "_" in numbers) or go-yaml would read as anything else is quoted; the document's own schema, YAML 1.2
 * core, already quotes what it would misread (0o17, 1e3, true, null).
 */
export function kubectlCompatTags(): Tags {
  return [...yaml11(), goInt];
}
