// Flags that take a duration (`--duration 3s`) or a positive number (`--rate 500`), shared by `tessera bench`,
// `tessera load` and `tessera demo-app`: a value that is neither is a usage error naming the flag.
import { parseDuration } from '../common/duration.js';
import { TesseraError } from '../common/errors.js';
import { type ParsedArgs, stringFlag } from './args.js';

export function durationFlag(args: ParsedArgs, name: string): number | undefined {
  const v = stringFlag(args, name);
  if (v === undefined) return undefined;
  try {
    return parseDuration(v);
  } catch {
    throw new TesseraError('TESSERA_ERR_CLI_USAGE', `--${name} "${v}" is not a duration (e.g. 3s, 500ms)`);
  }
}

export function positiveNumberFlag(args: ParsedArgs, name: string, integer: boolean): number | undefined {
  const v = stringFlag(args, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new TesseraError('TESSERA_ERR_CLI_USAGE', `--${name} must be a positive ${integer ? 'integer' : 'number'}, got "${v}"`);
  }
  return n;
}
