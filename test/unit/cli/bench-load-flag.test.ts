// `tessera bench --load`: autocannon unless wrk is asked for; anything else, or wrk with a fixed --rate (which the
// paced generator drives), is a usage error naming the flag.
import { describe, expect, test } from 'vitest';
import { parseArgs } from '../../../cli/args.js';
import { benchCommand } from '../../../cli/commands/bench.js';
import { loadFlag } from '../../../cli/run/bench.js';

const parse = (...argv: string[]) => parseArgs(['mesh', ...argv], benchCommand.flags ?? {});

describe('bench --load', () => {
  test('autocannon by default; autocannon and wrk by name', () => {
    expect(loadFlag(parse())).toBe('autocannon');
    expect(loadFlag(parse('--load', 'autocannon'))).toBe('autocannon');
    expect(loadFlag(parse('--load', 'wrk'))).toBe('wrk');
    expect(loadFlag(parse('--load', 'autocannon', '--rate', '1000'))).toBe('autocannon');
  });

  test('another generator, or wrk with a fixed rate: a usage error', () => {
    expect(() => loadFlag(parse('--load', 'ab'))).toThrow(expect.objectContaining({ code: 'TESSERA_ERR_CLI_USAGE', message: expect.stringContaining('--load must be autocannon or wrk, got "ab"') }));
    expect(() => loadFlag(parse('--load', 'wrk', '--rate', '1000'))).toThrow(expect.objectContaining({ code: 'TESSERA_ERR_CLI_USAGE', message: expect.stringContaining('--load wrk drives a closed loop') }));
  });
});
