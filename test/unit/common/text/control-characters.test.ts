// Control characters in operator free text: refused (reasons) or dropped (names), tab and printable text kept.
import { describe, expect, test } from 'vitest';
import { escapeControlCharacters, hasControlCharacters, shownText, withoutControlCharacters } from '../../../../common/text/control-characters.js';

describe('control characters', () => {
  test('NUL, newline, escape, DEL and C1 are control characters; tab, text and emoji are not', () => {
    for (const s of ['a\u0000b', 'line\nbreak', '\u001b[31m', 'x\u007f', '\u0085']) expect(hasControlCharacters(s), JSON.stringify(s)).toBe(true);
    for (const s of ['plain', 'tab\there', "quote ' ; DROP TABLE x; --", 'été 🚀', '']) expect(hasControlCharacters(s), JSON.stringify(s)).toBe(false);
  });

  // An outside audit: a ban reason "bidi \u202egnp.exe" printed reversed in `tessera revoke list`.
  test('bidi overrides, embeddings, isolates and marks, and the line and paragraph separators, count too', () => {
    for (const c of ['\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069', '\u200e', '\u200f', '\u061c', '\u2028', '\u2029']) {
      expect(hasControlCharacters(`a${c}b`), JSON.stringify(c)).toBe(true);
    }
    // Joiners stay: emoji sequences and scripts need them.
    for (const s of ['👨\u200d👩\u200d👧', 'क्\u200dष', 'العربية', 'עברית']) expect(hasControlCharacters(s), JSON.stringify(s)).toBe(false);
  });

  test('dropping keeps everything else in order', () => {
    expect(withoutControlCharacters('al\u0000ice\n')).toBe('alice');
    expect(withoutControlCharacters('bob\tsmith')).toBe('bob\tsmith');
  });

  // Audit 59d F5: U+2028 came out as "\x2028", which reads as "\x20" and "28".
  test('escaping writes \\xNN up to 0xff and \\uNNNN above', () => {
    expect(escapeControlCharacters('a\u0000\u001b\u0085b')).toBe('a\\x00\\x1b\\x85b');
    expect(escapeControlCharacters('x\u2028\u202ey')).toBe('x\\u2028\\u202ey');
  });

  test('shownText bounds what it shows, counts the rest, and escapes', () => {
    expect(shownText('ok')).toBe('ok');
    const long = shownText(`\n${'x'.repeat(5_000)}`, 100);
    expect(long).toBe(`\\x0a${'x'.repeat(99)}… (4901 more characters)`);
    expect(hasControlCharacters(long)).toBe(false);
  });
});
