// fast-check mutations of real DER (certificates, CSRs): bit flips, byte changes, truncation, insertion and
// deletion, length-field tampering (shorter, longer, indefinite, huge, non-minimal), deep nesting, trailing bytes.
import fc from 'fast-check';

/** Where each TLV header of a DER tree is: its offset and how many bytes its header takes. */
export interface TlvHeader {
  readonly at: number;
  readonly headerLength: number;
  readonly length: number;
}

/** Every TLV header of well-formed DER, walking into every constructed node (and BIT/OCTET STRINGs that parse). */
export function tlvHeaders(der: Uint8Array, from = 0, to = der.length, out: TlvHeader[] = [], depth = 0): TlvHeader[] {
  let pos = from;
  while (pos + 2 <= to && depth < 32) {
    const tag = der[pos]!;
    let len = der[pos + 1]!;
    let hl = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4 || pos + 2 + n > to) return out;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + der[pos + 2 + i]!;
      hl += n;
    }
    if (pos + hl + len > to) return out;
    out.push({ at: pos, headerLength: hl, length: len });
    const start = pos + hl;
    if (tag & 0x20) tlvHeaders(der, start, start + len, out, depth + 1);
    else if (tag === 0x04 && len > 2) tlvHeaders(der, start, start + len, out, depth + 1);
    pos = start + len;
  }
  return out;
}

function encodeLength(n: number): number[] {
  if (n < 0x80) return [n];
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return [0x80 | bytes.length, ...bytes];
}

export type Mutation =
  | { readonly kind: 'flip'; readonly at: number; readonly bit: number }
  | { readonly kind: 'set'; readonly at: number; readonly value: number }
  | { readonly kind: 'truncate'; readonly at: number }
  | { readonly kind: 'insert'; readonly at: number; readonly bytes: readonly number[] }
  | { readonly kind: 'delete'; readonly at: number; readonly count: number }
  | { readonly kind: 'length'; readonly node: number; readonly to: 'zero' | 'minus1' | 'plus1' | 'indefinite' | 'huge' | 'five-bytes' | 'non-minimal' | 'random'; readonly random: number }
  | { readonly kind: 'nest'; readonly depth: number }
  | { readonly kind: 'trail'; readonly bytes: readonly number[] };

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.constantFrom(0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x30, 0x31, 0x7f, 0x80, 0x81, 0x82, 0x84, 0xa0, 0xa3, 0xff) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 4 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 4 }) }),
  fc.record({
    kind: fc.constant('length' as const),
    node: fc.nat(),
    to: fc.constantFrom('zero', 'minus1', 'plus1', 'indefinite', 'huge', 'five-bytes', 'non-minimal', 'random'),
    random: fc.nat({ max: 0xffff }),
  }),
  fc.record({ kind: fc.constant('nest' as const), depth: fc.integer({ min: 1, max: 3000 }) }),
  fc.record({ kind: fc.constant('trail' as const), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 8 }) }),
);

export function mutate(der: Buffer, m: Mutation): Buffer {
  const n = der.length;
  switch (m.kind) {
    case 'flip': {
      const out = Buffer.from(der);
      out[m.at % n] ^= 1 << m.bit;
      return out;
    }
    case 'set': {
      const out = Buffer.from(der);
      out[m.at % n] = m.value;
      return out;
    }
    case 'truncate':
      return der.subarray(0, m.at % n);
    case 'insert': {
      const at = m.at % (n + 1);
      return Buffer.concat([der.subarray(0, at), Buffer.from(m.bytes), der.subarray(at)]);
    }
    case 'delete': {
      const at = m.at % n;
      return Buffer.concat([der.subarray(0, at), der.subarray(at + m.count)]);
    }
    case 'length': {
      const headers = tlvHeaders(der);
      if (headers.length === 0) return der;
      const h = headers[m.node % headers.length]!;
      const enc = {
        zero: [0],
        minus1: encodeLength(Math.max(0, h.length - 1)),
        plus1: encodeLength(h.length + 1),
        indefinite: [0x80],
        huge: [0x84, 0xff, 0xff, 0xff, 0xff],
        'five-bytes': [0x85, 0, 0, 0, 0, h.length & 0xff],
        'non-minimal': [0x84, ...[24, 16, 8, 0].map((s) => (h.length >>> s) & 0xff)],
        random: encodeLength(m.random),
      }[m.to];
      return Buffer.concat([der.subarray(0, h.at + 1), Buffer.from(enc), der.subarray(h.at + h.headerLength)]);
    }
    case 'nest': {
      let out = der;
      for (let i = 0; i < m.depth; i++) out = Buffer.concat([Buffer.from([0x30, ...encodeLength(out.length)]), out]);
      return out;
    }
    case 'trail':
      return Buffer.concat([der, Buffer.from(m.bytes)]);
  }
}

/** One to three mutations applied in turn. */
export const mutations = fc.array(mutation, { minLength: 1, maxLength: 3 });

export const applyAll = (der: Buffer, ms: readonly Mutation[]): Buffer => ms.reduce((d, m) => (d.length === 0 ? d : mutate(d, m)), der);
