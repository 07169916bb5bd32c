// The audience list of a JWT-SVID request, checked the same way where a workload asks (the proxy's Workload API)
// and where the token is signed (the control plane): 1 to 16 distinct entries, each a string a relying party can
// compare and log as it is.
import { TesseraError } from '../errors.js';

export const MAX_AUDIENCES = 16;
export const MAX_AUDIENCE_BYTES = 256;

/**
 * An audience as a relying party compares and logs it: no control character (NUL, CR, LF…), nothing invisible or
 * unassigned (format characters like a zero-width space or a right-to-left override, every default-ignorable code
 * point: joiners, variation selectors, Hangul fillers; line and paragraph separators; the braille blank and the Khitan filler; code
 * points Unicode has not assigned), no U+FFFD (what the protobuf decoder makes of invalid UTF-8, a lone surrogate),
 * no space at either end.
 */
const AUDIENCE_TEXT = /^(?![\s\S]*[\p{Cc}\p{Cf}\p{Cn}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}\u2800\u{16FE4}\uFFFD])\S(?:[\s\S]*\S)?$/u;

/** The audience list, checked and without repeats, or TESSERA_ERR_JWT_SVID_AUDIENCE_REQUIRED. */
export function checkAudience(audience: readonly string[]): string[] {
  const aud = [...new Set(audience)];
  if (aud.length === 0 || aud.length > MAX_AUDIENCES || aud.some((a) => typeof a !== 'string' || !AUDIENCE_TEXT.test(a) || Buffer.byteLength(a) > MAX_AUDIENCE_BYTES)) {
    throw new TesseraError('TESSERA_ERR_JWT_SVID_AUDIENCE_REQUIRED', `give 1 to ${MAX_AUDIENCES} audiences of at most ${MAX_AUDIENCE_BYTES} bytes, without control or format characters or spaces at either end`);
  }
  return aud;
}
