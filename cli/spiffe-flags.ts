// The command line's SPIFFE-typed flag values (a SPIFFE ID, an ID pattern, a trust domain), checked before a command
// does anything with them: a malformed one is a usage error (exit 2, TESSERA_ERR_CLI_USAGE) naming the flag, the
// value and the specific TESSERA_ERR_SPIFFE_ID_* code, the same for every command that takes one.
import { TesseraError, describeError } from '../common/errors.js';
import { compileIdPattern } from '../common/spiffe/match.js';
import { SpiffeId } from '../common/spiffe/spiffe-id.js';
import { TrustDomain } from '../common/spiffe/trust-domain.js';
import { escapeControlCharacters } from '../common/text/control-characters.js';
import { type ParsedArgs, stringFlag } from './args.js';

/** A value as the message quotes it: the first 200 characters, control characters escaped. */
function quoted(text: string): string {
  return `"${escapeControlCharacters(text.length > 200 ? `${text.slice(0, 200)}…` : text)}"`;
}

function checked<T>(flag: string, text: string, what: string, parse: (text: string) => T): T {
  try {
    return parse(text);
  } catch (e) {
    if (!(e instanceof TesseraError)) throw e;
    throw new TesseraError('TESSERA_ERR_CLI_USAGE', `--${flag} ${quoted(text)} is not ${what} (${describeError(e)})`, { flag, cause: e.code });
  }
}

/** `--flag ID`, parsed; undefined when not given. */
export function spiffeIdFlag(args: ParsedArgs, flag: string): SpiffeId | undefined {
  const text = stringFlag(args, flag);
  return text === undefined ? undefined : checked(flag, text, 'a SPIFFE ID', SpiffeId.parse);
}

/** Each value of `--flag PATTERN` (a flag that may repeat), checked and returned as given. */
export function idPatternFlags(args: ParsedArgs, flag: string): string[] {
  const v = args.flags[flag];
  const values = v === undefined ? [] : Array.isArray(v) ? v : [String(v)];
  for (const text of values) checked(flag, text, 'a SPIFFE ID pattern', compileIdPattern);
  return values;
}

/** `--flag TD` ("example.org" or "spiffe://example.org"), parsed; undefined when not given. */
export function trustDomainFlag(args: ParsedArgs, flag: string): TrustDomain | undefined {
  const text = stringFlag(args, flag);
  return text === undefined ? undefined : checked(flag, text, 'a trust domain', TrustDomain.parse);
}
