// A strict walker over the protobuf wire format, run on every gRPC message before protobufjs decodes it. protobufjs
// is lenient where Go and C++ protobuf refuse: a string whose declared length runs past the end is cut short, an
// int64 varint cut short at the end reads past it, a 32-bit varint of 6 to 9 bytes skips 5 bytes whatever they
// hold, field number 0 is skipped, and a known field sent with another wire type is read as its own type. Any of
// these lets Tessera and another parser disagree about what a message says (audit 24b F6), so a message is accepted
// only if every tag, varint, fixed field and length-delimited field lies wholly inside its enclosing message, and
// what protobufjs then decodes is exactly what the bytes say. Likewise a proto3 string that is not valid UTF-8: Go
// refuses the message, protobufjs put U+FFFD in place of the bad bytes (audit 27), so two readers of one message
// saw two strings. bytes fields stay free-form.
import { isUtf8 } from 'node:buffer';
import type protobuf from 'protobufjs';
import { TesseraError } from '../common/errors.js';

/** protobufjs's own nesting limit (util.recursionLimit, protoc's default): deeper known messages are refused. */
const MAX_DEPTH = 100;
const MAX_FIELD_NUMBER = 0x1fffffff;

/** The wire types proto3 writes (3 and 4 are groups, 6 and 7 are no type: all refused). */
const Wire = { Varint: 0, Fixed64: 1, Delimited: 2, Fixed32: 5 } as const;
type Wire = (typeof Wire)[keyof typeof Wire];

/** What a known field's bytes must be. */
interface FieldRule {
  /** The wire type the field's type is written with. */
  readonly wire: Wire;
  /** A varint read by protobufjs as 32 bits (it handles only 1-5 or exactly 10 bytes correctly). */
  readonly varint32: boolean;
  /** A repeated number: also accepted packed (wire type 2 holding a whole number of elements). */
  readonly packable: boolean;
  /** For a message or map entry: its rules (filled in after construction, so recursive types work). */
  readonly message: MessageRules | undefined;
  /** A string: its bytes must be valid UTF-8 (proto3, as Go's protobuf checks). */
  readonly utf8: boolean;
}

type MessageRules = Map<number, FieldRule>;

const VARINT32 = new Set(['int32', 'uint32', 'sint32', 'bool']);
const VARINT64 = new Set(['int64', 'uint64', 'sint64']);
const FIXED32 = new Set(['fixed32', 'sfixed32', 'float']);
const FIXED64 = new Set(['fixed64', 'sfixed64', 'double']);

/** The check for messages of `type`: throws TESSERA_ERR_PROTO_MALFORMED unless `bytes` is a well-formed message. */
export function wireChecker(type: protobuf.Type): (bytes: Uint8Array) => void {
  const rules = messageRules(type, new Map());
  return (bytes) => {
    const fault = walk(bytes, 0, bytes.length, rules, 0);
    if (fault !== undefined) throw new TesseraError('TESSERA_ERR_PROTO_MALFORMED', `${type.fullName.slice(1)}: ${fault}`);
  };
}

function messageRules(type: protobuf.Type, built: Map<protobuf.Type, MessageRules>): MessageRules {
  const known = built.get(type);
  if (known !== undefined) return known;
  const rules: MessageRules = new Map();
  built.set(type, rules); // before the fields, so a type that holds itself ends here
  for (const field of type.fieldsArray) {
    field.resolve();
    if (field.map) {
      // A map field is a repeated entry message { key = 1; value = 2; }.
      const entry: MessageRules = new Map([
        [1, scalarOrMessage((field as unknown as protobuf.MapField).keyType, null, built)],
        [2, scalarOrMessage(field.type, field.resolvedType, built)],
      ]);
      rules.set(field.id, { wire: Wire.Delimited, varint32: false, packable: false, message: entry, utf8: false });
      continue;
    }
    const rule = scalarOrMessage(field.type, field.resolvedType, built);
    rules.set(field.id, field.repeated && rule.wire !== Wire.Delimited ? { ...rule, packable: true } : rule);
  }
  return rules;
}

function scalarOrMessage(name: string, resolved: protobuf.Type | protobuf.Enum | null, built: Map<protobuf.Type, MessageRules>): FieldRule {
  const plain = (wire: Wire, varint32 = false, utf8 = false): FieldRule => ({ wire, varint32, packable: false, message: undefined, utf8 });
  if (resolved !== null && 'values' in resolved) return plain(Wire.Varint, true); // an enum: read as int32
  if (resolved !== null) return { wire: Wire.Delimited, varint32: false, packable: false, message: messageRules(resolved as protobuf.Type, built), utf8: false };
  if (VARINT32.has(name)) return plain(Wire.Varint, true);
  if (VARINT64.has(name)) return plain(Wire.Varint);
  if (FIXED32.has(name)) return plain(Wire.Fixed32);
  if (FIXED64.has(name)) return plain(Wire.Fixed64);
  return plain(Wire.Delimited, false, name === 'string'); // string, bytes
}

/**
 * The end of the varint at `pos` (which must end before `end`), or a fault. Like Go's protowire: at most 10 bytes,
 * the tenth at most 1.
 */
function varintEnd(b: Uint8Array, pos: number, end: number): number | string {
  for (let i = 0; i < 10; i++) {
    if (pos + i >= end) return `a varint at byte ${pos} runs past the end`;
    const byte = b[pos + i]!;
    if (byte < 0x80) return i === 9 && byte > 1 ? `the varint at byte ${pos} overflows 64 bits` : pos + i + 1;
  }
  return `the varint at byte ${pos} is longer than 10 bytes`;
}

/** The value of a varint of at most 5 bytes (a tag or a length) and its end, or a fault. */
function smallVarint(b: Uint8Array, pos: number, end: number, what: string): [number, number] | string {
  let value = 0;
  for (let i = 0; i < 5; i++) {
    if (pos + i >= end) return `the ${what} at byte ${pos} runs past the end`;
    const byte = b[pos + i]!;
    value += (byte & 0x7f) * 2 ** (7 * i);
    if (byte < 0x80) return [value, pos + i + 1];
  }
  return `the ${what} at byte ${pos} is longer than 5 bytes`;
}

/** A fixed or varint value of `wire` at `pos`: its end, or a fault. */
function scalarEnd(b: Uint8Array, pos: number, end: number, wire: Wire, varint32: boolean): number | string {
  if (wire === Wire.Fixed64 || wire === Wire.Fixed32) {
    const next = pos + (wire === Wire.Fixed64 ? 8 : 4);
    return next <= end ? next : `a fixed-size field at byte ${pos} runs past the end`;
  }
  const next = varintEnd(b, pos, end);
  if (typeof next === 'number' && varint32 && next - pos > 5 && next - pos !== 10) return `the 32-bit varint at byte ${pos} is ${next - pos} bytes`;
  return next;
}

/** Walks the message in b[start, end): undefined if well-formed, else what is wrong. */
function walk(b: Uint8Array, start: number, end: number, rules: MessageRules, depth: number): string | undefined {
  if (depth > MAX_DEPTH) return `messages nest deeper than ${MAX_DEPTH}`;
  let pos = start;
  while (pos < end) {
    const tag = smallVarint(b, pos, end, 'tag');
    if (typeof tag === 'string') return tag;
    const [key, afterTag] = tag;
    const field = Math.floor(key / 8);
    const wire = (key % 8) as Wire;
    if (field === 0 || field > MAX_FIELD_NUMBER) return `field number ${field} at byte ${pos}`;
    if (wire !== Wire.Varint && wire !== Wire.Fixed64 && wire !== Wire.Delimited && wire !== Wire.Fixed32) {
      return `wire type ${wire} (a group or no type) at byte ${pos}`;
    }
    const rule = rules.get(field);
    if (rule !== undefined && wire !== rule.wire && !(rule.packable && wire === Wire.Delimited)) {
      return `field ${field} at byte ${pos} has wire type ${wire}, its type is written with ${rule.wire}`;
    }
    if (wire !== Wire.Delimited) {
      const next = scalarEnd(b, afterTag, end, wire, rule?.varint32 === true);
      if (typeof next === 'string') return next;
      pos = next;
      continue;
    }
    const len = smallVarint(b, afterTag, end, 'length');
    if (typeof len === 'string') return len;
    const [length, body] = len;
    if (length > end - body) return `field ${field} at byte ${pos} declares ${length} bytes, ${end - body} remain`;
    const at = pos;
    pos = body + length;
    if (rule === undefined) continue;
    const fault =
      rule.message !== undefined
        ? walk(b, body, pos, rule.message, depth + 1)
        : rule.wire !== Wire.Delimited
          ? packed(b, body, pos, rule)
          : rule.utf8 && !utf8(b, body, pos)
            ? `field ${field} at byte ${at} is a string that is not valid UTF-8`
            : undefined;
    if (fault !== undefined) return fault;
  }
  return undefined;
}

/**
 * b[start, end) is valid UTF-8. ASCII is scanned here: isUtf8 costs ~200 ns a call (a view and a native call),
 * several times the rest of a short field's check; it judges only what follows the first byte over 0x7f.
 */
function utf8(b: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (b[i]! > 0x7f) return isUtf8(b.subarray(i, end));
  return true;
}

/** A packed repeated number: b[start, end) must hold whole elements only. */
function packed(b: Uint8Array, start: number, end: number, rule: FieldRule): string | undefined {
  for (let pos = start; pos < end; ) {
    const next = scalarEnd(b, pos, end, rule.wire, rule.varint32);
    if (typeof next === 'string') return next;
    pos = next;
  }
  return undefined;
}
