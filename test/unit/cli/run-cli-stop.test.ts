// runCli and the first SIGINT/SIGTERM (audit 24b F4c): a one-shot command is ended by it, coded, with the
// shell's exit code for the signal; a command that owns the stop (proxy, control-plane, up…) is left to drain.
import { describe, expect, test } from 'vitest';
import { systemClock } from '../../../common/clock.js';
import type { Command, CommandIo } from '../../../cli/command.js';
import { runCli } from '../../../cli/run-cli.js';
import { realTimers } from '../../../shared-io/timers.js';

function io(stopSignal: Promise<NodeJS.Signals>): CommandIo & { err: string[] } {
  const err: string[] = [];
  return { err, stdout: () => undefined, stderr: (t) => err.push(t), env: {}, cwd: '/', clock: systemClock, timers: realTimers, stopSignal };
}

const stuck: Command = { path: ['stuck'], summary: 's', usage: '', flags: {}, run: () => new Promise(() => undefined) };

describe('runCli and the stop signal', () => {
  test.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)('a one-shot command still running at %s ends with exit %i and TESSERA_ERR_CLI_INTERRUPTED', async (signal, code) => {
    const out = io(Promise.resolve(signal));
    expect(await runCli(['stuck'], [stuck], out)).toBe(code);
    expect(out.err).toEqual([`tessera stuck: TESSERA_ERR_CLI_INTERRUPTED: stopped by ${signal} before it finished\n`]);
  });

  test('a command that owns the stop gets the signal and decides its exit itself (drain, then 0)', async () => {
    const drains: Command = { ...stuck, ownsStop: true, run: async (_args, cio) => ((await cio.stopSignal) === 'SIGTERM' ? 0 : 9) };
    const out = io(Promise.resolve('SIGTERM'));
    expect(await runCli(['stuck'], [drains], out)).toBe(0);
    expect(out.err).toEqual([]);
  });

  test('a one-shot command that finishes first keeps its own exit code', async () => {
    const quick: Command = { ...stuck, run: async () => 0 };
    expect(await runCli(['stuck'], [quick], io(new Promise(() => undefined)))).toBe(0);
  });

  test('a stop asked for before a one-shot command started (while the binary loaded): it never runs, exit 143', async () => {
    let ran = false;
    const changes: Command = {
      ...stuck,
      run: async () => {
        ran = true;
        return 0;
      },
    };
    const out = { ...io(Promise.resolve('SIGTERM')), stopRequested: () => 'SIGTERM' as const };
    expect(await runCli(['stuck'], [changes], out)).toBe(143);
    expect(ran).toBe(false);
    expect(out.err).toEqual(['tessera stuck: TESSERA_ERR_CLI_INTERRUPTED: stopped by SIGTERM before it started\n']);
  });

  test('a command that owns the stop still starts when the stop came first (it drains, then exits)', async () => {
    let ran = false;
    const drains: Command = {
      ...stuck,
      ownsStop: true,
      run: async () => {
        ran = true;
        return 0;
      },
    };
    expect(await runCli(['stuck'], [drains], { ...io(Promise.resolve('SIGTERM')), stopRequested: () => 'SIGTERM' as const })).toBe(0);
    expect(ran).toBe(true);
  });
});
