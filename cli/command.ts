// The shape of a `tessera` sub-command: declared flags, help text, and a run function over injected I/O. A command's
// file (cli/commands/) holds only what help, flag parsing and usage errors need; what it does (cli/run/) is loaded
// when it runs, so that `tessera version` or `tessera token create` does not load the proxy or the control plane.
import type { Clock } from '../common/clock.js';
import type { Timers } from '../shared-io/timers.js';
import type { FlagSpecs, ParsedArgs } from './args.js';

export interface CommandIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  readonly clock: Clock;
  /** A command's own waits (a poll's pause, a slow demo answer, an abort's grace) run here. */
  readonly timers: Timers;
  /** Resolves when the process is asked to stop (SIGINT/SIGTERM); long-running commands wait on it. */
  readonly stopSignal: Promise<NodeJS.Signals>;
  /** The stop asked for already, if any (read before a one-shot command starts: one asked for meanwhile stops it). */
  readonly stopRequested?: () => NodeJS.Signals | undefined;
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
/** As a shell reports a process a signal ended: 128 + the signal's number. */
export const exitCodeOfSignal = (signal: NodeJS.Signals): number => (signal === 'SIGINT' ? 130 : 143);

export interface Command {
  /** Words after `tessera`, e.g. ["svid", "verify"]. */
  readonly path: readonly string[];
  readonly summary: string;
  /** Usage line after the command path, e.g. "--bundle F [--id ID] CERT". */
  readonly usage: string;
  readonly flags: FlagSpecs;
  /** Extra help paragraphs. */
  readonly details?: string;
  /** Exact number of positionals, or a [min, max] range. Default: none allowed. */
  readonly positionals?: number | readonly [number, number];
  /**
   * The command waits on io.stopSignal itself (long-running ones drain, bench and load abort their own work).
   * Any other command is ended by the first SIGINT/SIGTERM: TESSERA_ERR_CLI_INTERRUPTED, exit 130 or 143.
   */
  readonly ownsStop?: boolean;
  run(args: ParsedArgs, io: CommandIo): Promise<number>;
}

/**
 * A command's run, loaded when the command runs: `load` is the dynamic import() of its module under cli/run/, `pick`
 * names the function in it. A static import there would load that module (and all it imports) for every command.
 */
export function runOnDemand<M>(load: () => Promise<M>, pick: (module: M) => Command['run']): Command['run'] {
  return async (args, io) => pick(await load())(args, io);
}
