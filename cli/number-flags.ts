// Flags that take a duration (`--duration 3s`) or a number (`--connections 10`, `--rate 500`), for every command:
// each has a documented range (docs/cli.md), and a value outside it, or not a number at all, is a usage error naming
// the flag, the value and the range. A range is what keeps a typo from being run: `load --connections 1e9` once built
// a billion connection objects synchronously, so not even SIGTERM could end it (audit 55a F4).
import { formatDuration, parseDuration } from '../common/duration.js';
import { TesseraError, describeError } from '../common/errors.js';
import { type ParsedArgs, stringFlag } from './args.js';

export interface Range {
  readonly min: number;
  readonly max: number;
}

/** The longest wait Node's timers run (24 days): the default ceiling of a duration flag. */
export const TIMER_RANGE: Range = { min: 1, max: 2 ** 31 - 1 };

function usage(message: string, flag: string): TesseraError {
  return new TesseraError('TESSERA_ERR_CLI_USAGE', message, { flag });
}

/** A value as the message quotes it: at most 40 characters (a pasted blob is not echoed whole). */
function quoted(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
}

/** A duration as the range in a message shows it: exact (`1ms`, `24d20h31m23s`), never rounded to a neighbour. */
function showMs(ms: number): string {
  return ms < 1_000 || ms % 1_000 !== 0 ? `${ms}ms` : formatDuration(ms);
}

/** A text that must be a duration within `range` (ms); the flag's name is in every refusal. */
export function durationValue(flag: string, text: string, range: Range): number {
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (e) {
    // The malformed-duration code rides along, as a SPIFFE ID flag's TESSERA_ERR_SPIFFE_ID_* code does.
    throw usage(`--${flag} ${quoted(text)} is not a duration (${describeError(e)})`, flag);
  }
  if (!Number.isFinite(ms) || ms < range.min || ms > range.max) {
    throw usage(`--${flag} ${quoted(text)} is out of range: from ${showMs(range.min)} to ${showMs(range.max)}`, flag);
  }
  return ms;
}

export function durationFlag(args: ParsedArgs, name: string, range: Range = TIMER_RANGE): number | undefined {
  const v = stringFlag(args, name);
  return v === undefined ? undefined : durationValue(name, v, range);
}

/**
 * `--name N` in [min, max]; `integer` asks for a whole number. Plain decimal only: Number() would read "1e9", "0x10"
 * or " 7 " as numbers nobody meant to type.
 */
export function numberFlag(args: ParsedArgs, name: string, integer: boolean, range: Range): number | undefined {
  const v = stringFlag(args, name);
  if (v === undefined) return undefined;
  const n = (integer ? /^\d+$/ : /^\d+(\.\d+)?$|^\.\d+$/).test(v) ? Number(v) : Number.NaN;
  if (!Number.isFinite(n) || n < range.min || n > range.max) {
    throw usage(`--${name} must be ${integer ? 'a whole number' : 'a number'} from ${range.min} to ${range.max}, got ${quoted(v)}`, name);
  }
  return n;
}
