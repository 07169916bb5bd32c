// `tessera proxy` dispatches over its own command only (cli/tessera.ts, so a sidecar does not load every other
// command's modules): that must answer exactly as the whole table does, which holds while no other command's path
// starts with `proxy`.
import { describe, expect, test } from 'vitest';
import { systemClock } from '../../../common/clock.js';
import type { CommandIo } from '../../../cli/command.js';
import { COMMANDS } from '../../../cli/commands/index.js';
import { proxyCommand } from '../../../cli/commands/proxy.js';
import { runCli } from '../../../cli/run-cli.js';
import { realTimers } from '../../../shared-io/timers.js';

async function run(argv: string[], commands: typeof COMMANDS): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CommandIo = {
    stdout: (t) => {
      out += t;
    },
    stderr: (t) => {
      err += t;
    },
    env: {},
    cwd: process.cwd(),
    clock: systemClock,
    timers: realTimers,
    stopSignal: new Promise(() => undefined),
  };
  const code = await runCli(argv, commands, io);
  return { code, out, err };
}

describe('tessera proxy with its own command only', () => {
  test('no other command path starts with `proxy`', () => {
    expect(COMMANDS.filter((c) => c.path[0] === 'proxy')).toEqual([proxyCommand]);
  });

  test.each([[['proxy', '--help']], [['proxy', '--no-such-flag']], [['proxy']], [['proxy', 'extra']]])('%j answers as with the whole table', async (argv) => {
    expect(await run(argv, [proxyCommand])).toEqual(await run(argv, COMMANDS));
  });
});
