// The command line's values, checked the same way for every command (audit 55a F3, F4, F5, F12): a single-valued
// flag given twice or with an empty value is a usage error naming it, a number or duration outside its flag's range
// too, and a fault no command coded still reaches the user with a code (TESSERA_ERR_CLI_INTERNAL).
import { describe, expect, test } from 'vitest';
import { systemClock } from '../../../common/clock.js';
import { parseArgs } from '../../../cli/args.js';
import type { Command, CommandIo } from '../../../cli/command.js';
import { durationFlag, numberFlag, shareFlag, timeFlag } from '../../../cli/number-flags.js';
import { runCli } from '../../../cli/run-cli.js';
import { realTimers } from '../../../shared-io/timers.js';

const SPECS = { one: { type: 'string', description: 'd' }, many: { type: 'string', description: 'd', multiple: true } } as const;

function io(): CommandIo & { err: string[] } {
  const err: string[] = [];
  return { err, stdout: () => undefined, stderr: (t) => err.push(t), env: {}, cwd: '/', clock: systemClock, timers: realTimers, stopSignal: new Promise(() => undefined) };
}

const usage = (message: RegExp) => expect.objectContaining({ code: 'TESSERA_ERR_CLI_USAGE', message: expect.stringMatching(message) });

describe('parseArgs', () => {
  test('a single-valued flag given twice is refused, naming it, in either spelling', () => {
    expect(() => parseArgs(['--one', 'a', '--one', 'b'], SPECS)).toThrowError(usage(/^--one given twice/));
    expect(() => parseArgs(['--one=a', '--one', 'b'], SPECS)).toThrowError(usage(/^--one given twice/));
  });

  test('a repeatable flag keeps every value', () => {
    expect(parseArgs(['--many', 'a', '--many=b'], SPECS).flags['many']).toEqual(['a', 'b']);
  });

  test('an empty value is a missing one', () => {
    expect(() => parseArgs(['--one', ''], SPECS)).toThrowError(usage(/^--one needs a value/));
    expect(() => parseArgs(['--many='], SPECS)).toThrowError(usage(/^--many needs a value/));
  });
});

describe('number and duration flags have a range', () => {
  const args = (v: string) => parseArgs(['--one', v], SPECS);
  test.each(['1e9', '0x10', '10001', '0', '-3', '1.5', ' 7', ''.padEnd(400, '9')])('--one %s is outside 1..10000 (whole)', (v) => {
    expect(() => numberFlag(args(v), 'one', true, { min: 1, max: 10_000 })).toThrowError(usage(/^--one must be a whole number from 1 to 10000, got "/));
  });
  test('values in range pass', () => {
    expect(numberFlag(args('10000'), 'one', true, { min: 1, max: 10_000 })).toBe(10_000);
    expect(numberFlag(args('0.5'), 'one', false, { min: 0.01, max: 10 })).toBe(0.5);
    expect(durationFlag(args('1h30m'), 'one')).toBe(5_400_000);
  });
  test('a duration past the range, or past Node\'s longest timer by default, names the flag and the range', () => {
    expect(() => durationFlag(args('99999999999d'), 'one', { min: 1, max: 86_400_000 })).toThrowError(usage(/^--one "99999999999d" is out of range: from 1ms to 1d$/));
    expect(() => durationFlag(args('25d'), 'one')).toThrowError(usage(/^--one "25d" is out of range: from 1ms to 2147483647ms$/));
    expect(() => durationFlag(args('0s'), 'one')).toThrowError(usage(/out of range/));
  });
  test('a malformed duration carries TESSERA_ERR_CONFIG_BAD_DURATION', () => {
    expect(() => durationFlag(args('soon'), 'one')).toThrowError(usage(/^--one "soon" is not a duration \(TESSERA_ERR_CONFIG_BAD_DURATION: /));
  });
});

// The whole matrix of malformed values for each reading (cli-number-flags.test.ts runs a few of them through every
// flag of the real binary, which shows each flag is read by these functions).
describe('one rule for every number, share, time and duration (audit 56c F6)', () => {
  const args = (v: string) => parseArgs(['--one', v], SPECS);
  const numberBad = (good: string) => [` ${good}`, `${good} `, '', `-${good}`, `+${good}`, `${good}e0`, '1e2', '0x10', '0'];
  test.each([...numberBad('7'), ...numberBad('0.5')])('number %j is refused, naming the flag', (v) => {
    expect(() => numberFlag(args(v), 'one', false, { min: 0.01, max: 10_000 })).toThrowError(usage(/^--one /));
  });
  test.each([...numberBad('0.1').filter((v) => v !== '0'), ' 1%', '1% ', '1 %', '%', '-1%', '1e1%', '101%'])('share %j is refused, naming the flag', (v) => {
    expect(() => shareFlag(args(v), 'one')).toThrowError(usage(/^--one /));
  });
  test.each([' 3s', '3s ', '', '-3s', '1e2', '0s'])('duration %j is refused, naming the flag', (v) => {
    expect(() => durationFlag(args(v), 'one')).toThrowError(usage(/^--one /));
  });
  test.each([' 1700000000', '1700000000 ', '', '-1700000000', '+1700000000', '1700000000e0', '1e2', '0x10', ' 7', '7 ', '1e99', '99999999999999999999', 'July 2001', '2026-13-45T00:00:00Z'])(
    'time %j is refused, naming the flag',
    (v) => {
      expect(() => timeFlag(args(v), 'one')).toThrowError(usage(/^--one /));
    },
  );
  test('the good forms of each pass', () => {
    expect(shareFlag(args('1%'), 'one')).toBe(0.01);
    expect(shareFlag(args('0.1'), 'one')).toBe(0.1);
    expect(timeFlag(args('1700000000'), 'one')).toBe(1_700_000_000_000);
    expect(timeFlag(args('2026-12-07T10:00:00Z'), 'one')).toBe(Date.parse('2026-12-07T10:00:00Z'));
  });
});

describe('runCli', () => {
  test('an error without a code is printed with TESSERA_ERR_CLI_INTERNAL, exit 1', async () => {
    const broken: Command = { path: ['broken'], summary: 's', usage: '', flags: {}, run: async () => Promise.reject(new Error('GE T HTTP method is not supported')) };
    const out = io();
    expect(await runCli(['broken'], [broken], out)).toBe(1);
    expect(out.err).toEqual(['tessera broken: TESSERA_ERR_CLI_INTERNAL: GE T HTTP method is not supported\n']);
  });
});
