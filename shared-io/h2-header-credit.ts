// What the header fields an HTTP/2 client sent took on the wire, at least: the part of the control-traffic budget
// (h2-frame-budget.ts) its requests earn. node:http2 hands over decoded fields only, and HPACK lets a client name a
// field it sent before with a byte or two (an index into the connection's dynamic table, whose entries reach 4 KiB):
// credited at its decoded size, a request referencing a 3.9 KB entry three times bought ~1,000 WINDOW_UPDATE frames
// for a few bytes, and 55 M of them in 8 s were never cut (audit 53a F3). So a field earns nothing while the table may
// still hold it (the same name and value came before on the connection); otherwise its value, and its name the first
// time the connection sends that name (a literal may name a table entry for its name). What the table may hold is
// modelled as a table twice its size that takes every new field: HPACK evicts oldest first and takes only the fields
// the client chose to index, so whatever the table still holds the model holds too, unless the client paid for its
// eviction with 4 KiB of fresh literal fields, themselves credited about as sent. Fields the client sent never-indexed
// (http2.sensitiveHeaders: node:http2 clients send `authorization` that way on every request) and fields too large
// for the table are literal on the wire each time: their value is always credited. Short fields a client repeats as
// literals without indexing (nghttp2 does so for `:path`) go uncredited: the per-stream allowance covers them.
// Huffman coding lets a literal decode to at most 8/5 of its bytes.

/** The decoder's dynamic table (SETTINGS_HEADER_TABLE_SIZE): node:http2's default, which no Tessera server changes. */
export const HPACK_TABLE_BYTES = 4_096;
/** HPACK's size of a table entry beyond its name and value (RFC 7541 section 4.1). */
const ENTRY_OVERHEAD = 32;
/** The model of what the table may hold: twice its size, so a client must send fresh fields to push one out. */
const MODEL_BYTES = 2 * HPACK_TABLE_BYTES;
/** 30 bits: a hash V8 keeps as a small integer, not a boxed number. */
const KEY_MASK = 0x3fffffff;

/**
 * FNV-1a (32 bits) of `s` continuing from `h`: the model keeps hashes, not the fields (see #seen). A string over 64
 * characters is hashed by its length, its first and last 32 characters and 16 between: per request this runs over
 * every header field, and equal fields hash equal whatever is sampled; two different ones that hash equal only
 * withhold credit from the second.
 */
function fnv(h: number, s: string): number {
  let x = h;
  const n = s.length;
  if (n <= 64) {
    for (let i = 0; i < n; i++) x = Math.imul(x ^ s.charCodeAt(i), 0x01000193);
    return x;
  }
  x = Math.imul(x ^ n, 0x01000193);
  for (let i = 0; i < 32; i++) x = Math.imul(x ^ s.charCodeAt(i) ^ (s.charCodeAt(n - 1 - i) << 16), 0x01000193);
  const step = ((n - 64) / 16) | 0;
  for (let i = 0; i < 16; i++) x = Math.imul(x ^ s.charCodeAt(32 + i * step), 0x01000193);
  return x;
}
const BASIS = 0x811c9dc5 | 0;
/** A name's key: its hash mixed once more, so that it is not the key of its pair with an empty value. */
const nameKey = (h: number) => Math.imul(h ^ 0x5bd1e995, 0x01000193) & KEY_MASK;
/** A pair's key: the name's hash continued over a separator ("\n" is in no field name node:http2 accepts) and the value. */
const pairKey = (h: number, value: string) => fnv(Math.imul(h ^ 10, 0x01000193), value) & KEY_MASK;

export class HeaderCredit {
  /**
   * Names and name-value pairs seen, oldest first, with their HPACK entry size. Keyed by a 30-bit hash (a small
   * integer to V8) rather than the text, which a model full of short fields kept at ~20 KB a connection (~14 KB so);
   * a collision only withholds a field's credit, which the per-stream allowance covers.
   */
  readonly #seen = new Map<number, number>();
  #size = 0;

  /** Bytes credited for one header block: `raw` as node:http2 gives it (name, value, ...), `sensitive` its never-indexed names. */
  block(raw: readonly string[] | undefined, sensitive: readonly string[] | undefined): number {
    if (!raw) return 0;
    let credit = 0;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!;
      const value = raw[i + 1]!;
      const h = fnv(BASIS, name);
      // A literal the table never took (never-indexed, or larger than the table) does not enter the model either.
      const literal = name.length + value.length + ENTRY_OVERHEAD > HPACK_TABLE_BYTES || (sensitive !== undefined && sensitive.length > 0 && sensitive.includes(name));
      // A pair the table may hold is one byte on the wire, name and value.
      if (!literal && this.#see(pairKey(h, value), name.length + value.length + ENTRY_OVERHEAD)) continue;
      credit += value.length;
      if (!this.#see(nameKey(h), name.length + ENTRY_OVERHEAD)) credit += name.length;
    }
    return credit;
  }

  /** Whether `key` was in the model; if not, it is its newest entry now (if it fits the table at all). */
  #see(key: number, size: number): boolean {
    if (this.#seen.has(key)) return true;
    if (size > HPACK_TABLE_BYTES) return false;
    this.#seen.set(key, size);
    this.#size += size;
    if (this.#size > MODEL_BYTES) {
      for (const [k, s] of this.#seen) {
        this.#seen.delete(k);
        this.#size -= s;
        if (this.#size <= MODEL_BYTES) break;
      }
    }
    return false;
  }
}
