// Control characters in operator free text: refused (reasons) or dropped (names), tab and printable text kept.
import { describe, expect, test } from 'vitest';
import { hasControlCharacters, withoutControlCharacters } from '../../../../common/text/control-characters.js';

describe('control characters', () => {
  test('NUL, newline, escape, DEL and C1 are control characters; tab, text and emoji are not', () => {
    for (const s of ['a\u0000b', 'line\nbreak', '\u001b[31m', 'x\u007f', '\u0085']) expect(hasControlCharacters(s), JSON.stringify(s)).toBe(true);
    for (const s of ['plain', 'tab\there', "quote ' ; DROP TABLE x; --", 'été 🚀', '']) expect(hasControlCharacters(s), JSON.stringify(s)).toBe(false);
  });

  test('dropping keeps everything else in order', () => {
    expect(withoutControlCharacters('al\u0000ice\n')).toBe('alice');
    expect(withoutControlCharacters('bob\tsmith')).toBe('bob\tsmith');
  });
});
