// One spelling of an X.509 serial number for comparisons: lower-case hex, whole bytes, no leading zero byte, no
// separators (how node:crypto prints serials, in lower case, and how the control plane records them).

const HEX = /^[0-9a-f]+$/;

/** Longest serial RFC 5280 allows: 20 octets. */
const MAX_HEX_DIGITS = 40;

/** The canonical form of a serial written as hex (any case, `:` or spaces between bytes), or undefined. */
export function canonicalSerial(text: string): string | undefined {
  const hex = text.replace(/[:\s]/g, '').toLowerCase();
  if (hex === '' || !HEX.test(hex)) return undefined;
  const digits = hex.replace(/^0+/, '');
  if (digits.length > MAX_HEX_DIGITS) return undefined;
  if (digits === '') return '00';
  return digits.length % 2 === 1 ? `0${digits}` : digits;
}
