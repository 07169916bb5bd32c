#!/usr/bin/env -S node --max-semi-space-size=8
// Entry point of the `tessera` command: wires real process I/O into the CLI dispatcher. Nothing else.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(`tessera needs Node.js 24 or newer (this is ${process.version}); run it through npm/npx in the project, which use the pinned Node 24.\n`);
  process.exit(1);
}

// The first SIGINT/SIGTERM asks the command to stop: a long-running one drains, a one-shot one ends at once with
// TESSERA_ERR_CLI_INTERRUPTED (run-cli.ts). The same signal again while that runs (an impatient
// second Ctrl-C, a wrapper that forwards what it got) ends the process at once, as Node's default action did, but
// through process.exit: the default action skips the 'exit' hooks, and `tessera up`'s children, killed in its
// supervisor's hook, would live on. The other signal is ignored during the stop (before, only its first arrival
// was): after a terminal's Ctrl-C has reached every process of the group, `tessera up` still sends SIGTERM to each
// child, and those must go on draining.
// The handlers go in before the imports below (~0.3 s of a start): a stop asked for while they load is kept and
// answered once the command runs, not Node's default action, which ended the process silently with 143.
// A stop asked for after the command returned, while its output waits for a slow reader, ends that wait at once
// (`timeout 60 tessera certs list | slow` must end), with the signal's status: the reader did not get everything.
const signals = { first: undefined as NodeJS.Signals | undefined, commandReturned: false };
const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
  const onSignal = (signal: NodeJS.Signals) => {
    if (signals.first === undefined) {
      signals.first = signal;
      if (signals.commandReturned) process.exit(signal === 'SIGINT' ? 130 : 143);
      resolve(signal);
    } else if (signal === signals.first) {
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
});

// Everything else is imported only after the version check, so an old Node gets this message, not a SyntaxError.
// The command table holds each command's flags and help only; what a command does is loaded when it runs
// (cli/run/), so a one-shot command loads its own code, not the proxy's, the control plane's or the CA tooling's.
// `tessera proxy`, the long-running sidecar, skips even the table: no other command's path starts with `proxy`, so
// it dispatches exactly as with the whole table.
const [{ systemClock }, { realTimers }, commands, { runCli }, { ProcessOutput, exitStatusWhenGone, STOPPED_OUTPUT_WAIT_MS }] = await Promise.all([
  import('../common/clock.js'),
  import('../shared-io/timers.js'),
  process.argv[2] === 'proxy' ? import('./commands/proxy.js').then((m) => [m.proxyCommand]) : import('./commands/index.js').then((m) => m.COMMANDS),
  import('./run-cli.js'),
  import('./process-output.js'),
]);

// A reader that goes away (`| head -1`) ends the process as SIGPIPE ends other tools: quietly, status 141.
const output = new ProcessOutput(process.stdout, process.stderr, (err) => process.exit(exitStatusWhenGone(err)));


const code = await runCli(process.argv.slice(2), commands, {
  stdout: output.stdout,
  stderr: output.stderr,
  env: process.env,
  cwd: process.cwd(),
  clock: systemClock,
  timers: realTimers,
  stopSignal,
  stopRequested: () => signals.first,
});
signals.commandReturned = true;
// Long-running commands resolve only once stopped and drained, so exiting here never cuts work short; what they and
// one-shot commands wrote must reach the reader first, however slowly it reads (audit 54b F2). Once asked to stop
// (a daemon's SIGTERM, an interrupted command) the output gets a bounded wait, as the logs do: a stalled reader
// must not keep a stopping process alive.
const stopped = signals.first !== undefined;
await new Promise<void>((resolve) => {
  void output.settled().then(resolve);
  if (stopped) realTimers.setTimeout(resolve, STOPPED_OUTPUT_WAIT_MS, 'keep-alive');
});
process.exit(code);
