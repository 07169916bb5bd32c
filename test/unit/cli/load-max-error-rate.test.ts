// `tessera load --max-error-rate`: a fraction from 0 to 1 or a percentage, in decimal; anything else is a usage
// error naming the flag (an outside audit saw a bare `%` read as 0 % and `0x1` as 100 %).
import { describe, expect, test } from 'vitest';
import { parseArgs } from '../../../cli/args.js';
import { loadCommand } from '../../../cli/commands/load.js';
import { maxErrorRate } from '../../../cli/run/load.js';

const parse = (...argv: string[]) => parseArgs(['--url', 'http://127.0.0.1:1/', ...argv], loadCommand.flags ?? {});

describe('load --max-error-rate', () => {
  test('0 by default; fractions and percentages', () => {
    expect(maxErrorRate(parse())).toBe(0);
    expect(maxErrorRate(parse('--max-error-rate', '0.25'))).toBe(0.25);
    expect(maxErrorRate(parse('--max-error-rate', '.5'))).toBe(0.5);
    expect(maxErrorRate(parse('--max-error-rate', '1'))).toBe(1);
    expect(maxErrorRate(parse('--max-error-rate', '40%'))).toBe(0.4);
    expect(maxErrorRate(parse('--max-error-rate', '2.5%'))).toBe(0.025);
  });

  // Spaces are refused as in every number flag (cli/number-flags.ts), not trimmed (audit 56c F6).
  test.each(['%', '', ' ', '0x1', '1e-1', '-0.1', '1.5', '150%', 'ten', 'Infinity', '0.5%%', ' 2.5 % ', ' 0.1', '0.1 ', '2.5 %'])('"%s" is a usage error', (v) => {
    expect(() => maxErrorRate(parse('--max-error-rate', v))).toThrow(expect.objectContaining({ code: 'TESSERA_ERR_CLI_USAGE', message: expect.stringContaining('--max-error-rate') }));
  });
});
