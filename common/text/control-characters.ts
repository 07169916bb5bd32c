// Operator free text (reasons, names) is shown in logs, audit lines and the dashboard, and stored in databases that
// cannot hold every code point (PostgreSQL text refuses NUL): control characters are refused or dropped at the door.

/**
 * C0 controls except tab, DEL, C1 controls, and the format characters that change how a line reads without being
 * controls in the C0/C1 sense: the bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069, the
 * marks U+200E, U+200F, U+061C: a reason "\u202egnp.exe" prints reversed) and the line and paragraph separators
 * U+2028, U+2029 (line breaks to some renderers).
 */
function isControl(code: number): boolean {
  return (
    (code < 0x20 && code !== 0x09) ||
    (code >= 0x7f && code <= 0x9f) ||
    (code >= 0x202a && code <= 0x202e) ||
    (code >= 0x2066 && code <= 0x2069) ||
    code === 0x200e ||
    code === 0x200f ||
    code === 0x061c ||
    code === 0x2028 ||
    code === 0x2029
  );
}

export function hasControlCharacters(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (isControl(s.charCodeAt(i))) return true;
  return false;
}

export function withoutControlCharacters(s: string): string {
  if (!hasControlCharacters(s)) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) if (!isControl(s.charCodeAt(i))) out += s[i];
  return out;
}

/**
 * Control characters written as `\xNN` (`\u….` above 0xff), so text from a file or a peer printed to a terminal or
 * a log cannot move the cursor, retitle the window or forge a line (an ESC sequence in a YAML key did).
 */
export function escapeControlCharacters(s: string): string {
  if (!hasControlCharacters(s)) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += !isControl(c) ? s[i] : c <= 0xff ? `\\x${c.toString(16).padStart(2, '0')}` : `\\u${c.toString(16).padStart(4, '0')}`;
  }
  return out;
}

/**
 * Text to show someone (a denial kubectl prints, an error line) that quotes what a caller sent: at most `maxChars` of
 * it, the rest counted, and its control characters escaped (a 1 MB annotation came back whole, twice, with its NULs).
 */
export function shownText(s: string, maxChars = 1_024): string {
  const cut = s.length > maxChars ? `${s.slice(0, maxChars)}… (${s.length - maxChars} more characters)` : s;
  return escapeControlCharacters(cut);
}
