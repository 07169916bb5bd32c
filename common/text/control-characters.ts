// Operator free text (reasons, names) is shown in logs, audit lines and the dashboard, and stored in databases that
// cannot hold every code point (PostgreSQL text refuses NUL): control characters are refused or dropped at the door.

/** C0 controls except tab, DEL, and C1 controls. */
function isControl(code: number): boolean {
  return (code < 0x20 && code !== 0x09) || (code >= 0x7f && code <= 0x9f);
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
    out += isControl(c) ? `\\x${c.toString(16).padStart(2, '0')}` : s[i];
  }
  return out;
}
