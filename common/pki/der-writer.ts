// A minimal DER writer: just the types an X.509 leaf certificate and a PKCS#10 request need, so SVIDs (the CA) and
// SVID requests (the proxy) are built from bytes and signed with node:crypto, without a pure-JS ASN.1 library on
// the issuance path or in a sidecar's memory. The reader is der.ts.

function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One TLV with the given tag byte. */
export function tlv(tag: number, ...content: Uint8Array[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), lengthBytes(body.length), body]);
}

export const sequence = (...items: Uint8Array[]): Buffer => tlv(0x30, ...items);
export const set = (...items: Uint8Array[]): Buffer => tlv(0x31, ...items);
export const octetString = (b: Uint8Array): Buffer => tlv(0x04, b);
/** Context-specific tag [n]: constructed (explicit wrapping) or primitive (implicit). */
export const contextTag = (n: number, constructed: boolean, ...content: Uint8Array[]): Buffer => tlv((constructed ? 0xa0 : 0x80) | n, ...content);
export const booleanTrue = (): Buffer => Buffer.from([0x01, 0x01, 0xff]);
export const nullValue = (): Buffer => Buffer.from([0x05, 0x00]);
export const utf8String = (text: string): Buffer => tlv(0x0c, Buffer.from(text, 'utf8'));
/** PrintableString: the caller keeps to its alphabet (a country code). */
export const printableString = (text: string): Buffer => tlv(0x13, Buffer.from(text, 'latin1'));
/** IA5String content, for an IMPLICIT GeneralName (URI, DNS name): ASCII only, refused otherwise. */
export function ia5Bytes(text: string): Buffer {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) throw new RangeError(`not IA5 (ASCII) text: ${JSON.stringify(text)}`);
  return Buffer.from(text, 'ascii');
}

/** BIT STRING with no unused bits (signatures, keys). */
export const bitString = (b: Uint8Array): Buffer => tlv(0x03, Buffer.from([0]), b);

/** A non-negative INTEGER from big-endian magnitude bytes (a 0x00 is prepended when the high bit is set). */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const m = Buffer.from(magnitude.subarray(start));
  return tlv(0x02, m[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), m]) : m);
}

export const smallInteger = (n: number): Buffer => unsignedInteger(Buffer.from([n]));

export function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out: number[] = [parts[0]! * 40 + parts[1]!];
  for (const p of parts.slice(2)) {
    const chunk: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** RFC 5280: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, always "Z". */
export function time(ms: number): Buffer {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  const rest = `${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return tlv(0x17, Buffer.from(`${pad(y % 100)}${rest}`, 'ascii'));
  return tlv(0x18, Buffer.from(`${pad(y, 4)}${rest}`, 'ascii'));
}

/** An X.509 extension: SEQUENCE { extnID, critical?, OCTET STRING { value } }. */
export function extension(id: string, critical: boolean, value: Uint8Array): Buffer {
  return critical ? sequence(oid(id), booleanTrue(), octetString(value)) : sequence(oid(id), octetString(value));
}
