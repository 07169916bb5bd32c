// Every number, share, time and duration flag of every command, through the real binary, is read by one rule
// (cli/number-flags.ts, audit 56c F6): spaces around the value, and 0 where the range starts above it (else an
// exponent), are each a usage error naming the flag (exit 2), before the command reads a file, dials or lists
// anything; the rule's whole matrix of malformed values is in test/unit/cli/flag-values.test.ts. Before, `load
// --max-error-rate " 0.1 "` was taken (trimmed), its refusal named no flag, `policy check --port` and `svid verify
// --at` had parses of their own, and `bench --rounds 0` printed the scenario list.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { makeTempDir, type RunResult, tessera } from '../helpers/run.js';

const ID = 'spiffe://example.org/ns/default/sa/web';
let dir: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  await mkdir(join(dir, 'policies'));
});
afterAll(async () => cleanup?.());

/**
 * What each command needs besides the flag under test. Nothing it names exists, and a command that took a bad value
 * would stop at once at the next check (no scenario of that name, no such address), or after a second of `load`.
 */
const COMMANDS: Readonly<Record<string, (flag: string) => string[]>> = {
  load: (flag) => ['load', '--url', 'https://127.0.0.1:1/', ...(['duration', 'timeout'].includes(flag) ? [] : ['--duration', '1s', '--timeout', '1s'])],
  bench: () => ['bench'],
  'bench SCENARIO': () => ['bench', 'no-such-scenario'],
  'control-plane': () => ['control-plane', '--config', join(dir, 'none.yaml')],
  'policy check': () => ['policy', 'check', '--policies', join(dir, 'policies'), '--from', ID, '--to', ID],
  'svid verify': () => ['svid', 'verify', '--bundle', join(dir, 'none.pem'), join(dir, 'none-leaf.pem')],
  'certs list': () => ['certs', 'list', '--data-dir', join(dir, 'none')],
  'token create': () => ['token', 'create', '--data-dir', join(dir, 'none'), '--spiffe-id', ID],
  'policy break-glass': () => ['policy', 'break-glass', '--data-dir', join(dir, 'none'), '--to', ID, '--from', ID, '--reason', 'r'],
  'demo-app': () => ['demo-app', '--name', 'x', '--listen', 'no-such-address'],
  'ca sign-intermediate': () => ['ca', 'sign-intermediate', '--root-cert', 'r.pem', '--root-key', 'k.pem', '--csr', 'c.pem', '--out', join(dir, 'i.pem')],
};

/**
 * Malformed variants of a well-formed value `good` (in range): spaces around it (the old `--max-error-rate` trimmed
 * them, Number() reads them), and 0 where the range starts above it (each flag's own range), else an exponent. The
 * whole matrix (empty, signs, hex, …) is run against the one rule in test/unit/cli/flag-values.test.ts; here each
 * flag of the real binary shows it is read by that rule: each start is a process, ~0.4 s of CPU.
 */
function variants(good: string, zeroRefused: boolean): string[] {
  return [` ${good}`, zeroRefused ? '0' : `${good}e0`];
}

/** A duration's: spaces around it (which parseDuration trims), and 0 where the range starts above it, else an exponent. */
function durationVariants(good: string, zeroRefused: boolean): string[] {
  return [`${good} `, zeroRefused ? '0s' : '1e2'];
}

const FLAGS: readonly { command: string; flag: string; values: string[] }[] = [
  { command: 'load', flag: 'connections', values: variants('7', true) },
  { command: 'load', flag: 'rate', values: variants('0.5', true) },
  { command: 'load', flag: 'max-error-rate', values: [...variants('0.1', false), '1% ', '1e1%'] },
  { command: 'load', flag: 'duration', values: durationVariants('3s', true) },
  { command: 'load', flag: 'timeout', values: durationVariants('3s', true) },
  // No scenario: the list is printed only when every flag is good.
  { command: 'bench', flag: 'rounds', values: variants('3', true) },
  { command: 'bench', flag: 'connections', values: variants('8', true) },
  { command: 'bench', flag: 'rate', values: variants('100', true) },
  { command: 'bench', flag: 'duration', values: durationVariants('1s', true) },
  { command: 'bench', flag: 'warmup', values: durationVariants('1s', false) },
  // With a scenario: the flags are read before it is looked up.
  { command: 'bench SCENARIO', flag: 'rounds', values: ['0', ' 3'] },
  { command: 'bench SCENARIO', flag: 'prime', values: [' 1s', '-1s'] },
  { command: 'control-plane', flag: 'drain', values: variants('500', false) },
  { command: 'policy check', flag: 'port', values: variants('80', true) },
  { command: 'svid verify', flag: 'at', values: [...variants('1700000000', false), ' 7', 'July 2001'] },
  { command: 'certs list', flag: 'expiring-within', values: durationVariants('24h', true) },
  { command: 'token create', flag: 'ttl', values: durationVariants('1h', true) },
  { command: 'policy break-glass', flag: 'for', values: durationVariants('15m', true) },
  { command: 'demo-app', flag: 'delay', values: durationVariants('50ms', false) },
  { command: 'ca sign-intermediate', flag: 'ttl', values: durationVariants('30d', true) },
];

function expectUsage(r: RunResult, flag: string, value: string): void {
  const what = `${flag} ${JSON.stringify(value)}`;
  expect(r.code, `${what}: ${r.stderr}`).toBe(2);
  expect(r.stderr, what).toMatch(new RegExp(`^tessera [a-z -]+: TESSERA_ERR_CLI_USAGE: --${flag}\\b`));
  expect(r.stdout, what).toBe('');
}

describe('every number flag of every command is read by one rule', () => {
  for (const { command, flag, values } of FLAGS) {
    test(`${command} --${flag}: ${values.map((v) => JSON.stringify(v)).join(' ')}`, async () => {
      // Four at a time: each is a process start, and the machine is shared.
      for (let i = 0; i < values.length; i += 4) {
        const batch = values.slice(i, i + 4);
        const results = await Promise.all(batch.map((v) => tessera([...COMMANDS[command]!(flag), `--${flag}`, v])));
        for (const [j, r] of results.entries()) expectUsage(r, flag, batch[j]!);
      }
    }, 60_000);
  }

  test('good values get past the flags: bench lists with them; load --max-error-rate 1% reaches the connection', async () => {
    const list = await tessera(['bench', '--rounds', '2', '--duration', '1s', '--warmup', '0s']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain('2 rounds × (0ms + 1s)');
    const load = await tessera(['load', '--url', 'http://127.0.0.1:1/', '--duration', '1s', '--max-error-rate', '1%', '--connections', '1']);
    expect(load.stderr).not.toContain('TESSERA_ERR_CLI_USAGE');
  }, 60_000);
});
