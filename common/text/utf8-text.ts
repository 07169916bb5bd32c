// Config-like files (configs, policies, the static endpoints file) are UTF-8. Decoding them leniently turned a stray
// Latin-1 byte into U+FFFD without a word (a key path `k\xE9y.pem` became `k�y.pem`, another file) and a UTF-16 file
// into "(top level): must be a mapping"; here such bytes are found and placed (line, column) so they can be refused.

/** Where the text stops being UTF-8, and why, in words for the user. */
export interface NotUtf8 {
  readonly line: number;
  readonly col: number;
  readonly why: string;
}

/** The length of the valid UTF-8 sequence at `i` (1–4), or 0 when the byte there starts none (RFC 3629). */
function sequenceAt(b: Uint8Array, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => i + k < b.length && b[i + k]! >= lo && b[i + k]! <= hi;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    // No overlong forms (E0 80..9F), no UTF-16 surrogates (ED A0..BF).
    const ok = cont(1, c === 0xe0 ? 0xa0 : 0x80, c === 0xed ? 0x9f : 0xbf) && cont(2);
    return ok ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    // No overlong forms (F0 80..8F), nothing past U+10FFFF (F4 90..).
    const ok = cont(1, c === 0xf0 ? 0x90 : 0x80, c === 0xf4 ? 0x8f : 0xbf) && cont(2) && cont(3);
    return ok ? 4 : 0;
  }
  return 0;
}

/** The offset of the first byte that is not part of valid UTF-8, or -1 when all of it is. */
export function firstNonUtf8Byte(b: Uint8Array): number {
  for (let i = 0; i < b.length; ) {
    const n = sequenceAt(b, i);
    if (n === 0) return i;
    i += n;
  }
  return -1;
}

/** What a byte-order mark or the NUL bytes of UTF-16 text say about the encoding, if anything. */
function utf16(b: Uint8Array): string | undefined {
  if ((b[0] === 0xff && b[1] === 0xfe) || (b[0] === 0xfe && b[1] === 0xff)) return 'the file is UTF-16 (or UTF-32): it starts with that byte-order mark';
  // ASCII text in UTF-16 without a mark: every other byte NUL.
  if (b.length >= 4 && ((b[0] !== 0 && b[1] === 0 && b[3] === 0) || (b[0] === 0 && b[2] === 0 && b[1] !== 0))) return 'the file looks like UTF-16 (every other byte is NUL)';
  return undefined;
}

/**
 * Null when `bytes` are UTF-8 (a UTF-8 byte-order mark is fine); else where they stop being it. The column counts
 * characters, as an editor does.
 */
export function notUtf8(bytes: Uint8Array): NotUtf8 | null {
  const wide = utf16(bytes);
  if (wide !== undefined) return { line: 1, col: 1, why: `${wide}; save it as UTF-8` };
  const at = firstNonUtf8Byte(bytes);
  if (at < 0) return null;
  let lineStart = 0;
  let line = 1;
  for (let i = 0; i < at; i++) {
    if (bytes[i] === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  const col = [...Buffer.from(bytes.buffer, bytes.byteOffset + lineStart, at - lineStart).toString('utf8')].length + 1;
  const hex = bytes[at]!.toString(16).toUpperCase().padStart(2, '0');
  return { line, col, why: `not UTF-8: byte 0x${hex} does not start or continue a UTF-8 character (a file saved as Latin-1 or Windows-1252?); save it as UTF-8` };
}
