// Dispatches argv to the longest matching command path; maps errors to exit codes (usage 2, failure 1).
import { TesseraError, describeError } from '../common/errors.js';
import { parseArgs } from './args.js';
import { type Command, type CommandIo, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, exitCodeOfSignal } from './command.js';
import { commandHelp, treeHelp } from './help.js';

export async function runCli(argv: readonly string[], commands: readonly Command[], io: CommandIo): Promise<number> {
  // `tessera --version` is `tessera version` (the flag alone, as every CLI spells it).
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) return runCli(['version'], commands, io);
  const words = argv.filter((a) => !a.startsWith('-'));
  let match: Command | undefined;
  for (const c of commands) {
    if (c.path.every((p, i) => argv[i] === p) && (!match || c.path.length > match.path.length)) match = c;
  }
  const wantsHelp = argv.includes('--help') || argv.includes('-h');
  if (!match) {
    const prefix = argv.filter((a, i) => !a.startsWith('-') && commands.some((c) => c.path[i] === a));
    const known = commands.some((c) => prefix.every((p, i) => c.path[i] === p)) ? prefix : [];
    if (argv.length === 0 || wantsHelp || argv[0] === 'help') {
      io.stdout(treeHelp(commands, known));
      return EXIT_OK;
    }
    // A group named without its command (`tessera ca`), or with one it does not have (`tessera ca bogus`).
    const rest = words.slice(known.length).join(' ');
    const problem = rest === '' ? 'a command is needed' : `unknown command "${rest}"`;
    io.stderr(`${['tessera', ...known].join(' ')}: ${describeError(new TesseraError('TESSERA_ERR_CLI_USAGE', problem))}\n\n${treeHelp(commands, known)}`);
    return EXIT_USAGE;
  }
  if (wantsHelp) {
    io.stdout(commandHelp(match));
    return EXIT_OK;
  }
  try {
    const args = parseArgs(argv.slice(match.path.length), match.flags);
    const [min, max] = typeof match.positionals === 'number' ? [match.positionals, match.positionals] : (match.positionals ?? [0, 0]);
    if (args.positionals.length < min || args.positionals.length > max) {
      throw new TesseraError('TESSERA_ERR_CLI_USAGE', `expected ${min === max ? min : `${min}-${max}`} argument(s), got ${args.positionals.length}`);
    }
    // A stop asked for while the binary loaded: a one-shot command does not start, so nothing it would change is changed.
    const early = match.ownsStop ? undefined : io.stopRequested?.();
    if (early !== undefined) {
      io.stderr(`tessera ${match.path.join(' ')}: ${describeError(new TesseraError('TESSERA_ERR_CLI_INTERRUPTED', `stopped by ${early} before it started`))}\n`);
      return exitCodeOfSignal(early);
    }
    const running = match.run(args, io);
    if (match.ownsStop) return await running;
    // A one-shot command stops at the first signal: nothing of it is worth waiting for (a request stuck on a
    // control plane, say), and `timeout 60 tessera …` must end it. The abandoned run ends with the process.
    running.catch(() => undefined);
    const outcome = await Promise.race([running.then((code) => ({ code })), io.stopSignal.then((signal) => ({ signal }))]);
    if ('code' in outcome) return outcome.code;
    const e = new TesseraError('TESSERA_ERR_CLI_INTERRUPTED', `stopped by ${outcome.signal} before it finished`);
    io.stderr(`tessera ${match.path.join(' ')}: ${describeError(e)}\n`);
    return exitCodeOfSignal(outcome.signal);
  } catch (e) {
    if (e instanceof TesseraError && e.code === 'TESSERA_ERR_CLI_USAGE') {
      io.stderr(`tessera ${match.path.join(' ')}: ${describeError(e)}\n\n${commandHelp(match)}`);
      return EXIT_USAGE;
    }
    // Every line a user reads carries a code: a fault no command coded is told as such, with its cause.
    const coded = e instanceof TesseraError ? e : new TesseraError('TESSERA_ERR_CLI_INTERNAL', describeError(e), {}, { cause: e });
    io.stderr(`tessera ${match.path.join(' ')}: ${describeError(coded)}\n`);
    return EXIT_FAILURE;
  }
}

export { EXIT_OK };
