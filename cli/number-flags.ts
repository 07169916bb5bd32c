// Flags that take a duration (`--duration 3s`) or a number (`--connections 10`, `--rate 500`, `--port 80`, a share
// `--max-error-rate 1%`, Unix seconds `--at 1700000000`), for every command, read by one rule (decimal below):
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
  // parseDuration trims (around a YAML value, spaces are YAML's); here they are refused as a number's are.
  if (text.trim() !== text) throw usage(`--${flag} ${quoted(text)} is not a duration (spaces around it)`, flag);
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
 * The one reading of a number on the command line: plain decimal digits (`integer`: no fraction), nothing around
 * them; NaN otherwise. Number() would read "1e9", "0x10", " 7 ", "-0" or "" as numbers nobody meant to type.
 */
function decimal(text: string, integer: boolean): number {
  return (integer ? /^\d+$/ : /^\d+(\.\d+)?$|^\.\d+$/).test(text) ? Number(text) : Number.NaN;
}

/** A text that must be a decimal number within `range`; the flag's name is in every refusal. */
export function numberValue(flag: string, text: string, integer: boolean, range: Range): number {
  const n = decimal(text, integer);
  if (!Number.isFinite(n) || n < range.min || n > range.max) {
    throw usage(`--${flag} must be ${integer ? 'a whole number' : 'a number'} from ${range.min} to ${range.max}, got ${quoted(text)}`, flag);
  }
  return n;
}

/** `--name N` in [min, max]; `integer` asks for a whole number. */
export function numberFlag(args: ParsedArgs, name: string, integer: boolean, range: Range): number | undefined {
  const v = stringFlag(args, name);
  return v === undefined ? undefined : numberValue(name, v, integer, range);
}

/** `--name R`: a share, as a fraction from 0 to 1 (`0.01`) or a percentage (`1%`), each number read as above. */
export function shareFlag(args: ParsedArgs, name: string): number | undefined {
  const v = stringFlag(args, name);
  if (v === undefined) return undefined;
  const pct = v.endsWith('%');
  const n = decimal(pct ? v.slice(0, -1) : v, false) / (pct ? 100 : 1);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw usage(`--${name} must be a fraction from 0 to 1 or a percentage from 0% to 100%, got ${quoted(v)}`, name);
  return n;
}

/** The times a Date can hold: ±100,000,000 days from 1970 (ECMA-262), in ms. */
const DATE_RANGE_MS = 8_640_000_000_000_000;

/** ISO-8601 as RFC 3339 writes it (a space for the T allowed): Date.parse alone also takes " 7" as July 2001. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?$/;

/** `--name TIME`: an ISO-8601 time, or Unix seconds (read as every number flag is), as ms since 1970. */
export function timeFlag(args: ParsedArgs, name: string): number | undefined {
  const v = stringFlag(args, name);
  if (v === undefined) return undefined;
  const seconds = decimal(v, true);
  const ms = Number.isNaN(seconds) ? (ISO_TIME.test(v) ? Date.parse(v) : Number.NaN) : seconds * 1000;
  if (!Number.isFinite(ms) || Math.abs(ms) > DATE_RANGE_MS) throw usage(`--${name} ${quoted(v)} is not an ISO-8601 time or Unix seconds`, name);
  return ms;
}
