// The operational logger of the long-running commands (proxy, control plane, injector): pino JSON lines on stderr with
// string levels ("level":"info", as log pipelines expect), and the JSON lifecycle lines those commands print on
// stdout (the proxy's access log shares stdout, so every line there is JSON).
import pino, { type Logger } from 'pino';
import { realTimers, type Timers } from '../shared-io/timers.js';
import { LogDestination } from './log-destination.js';

export interface LoggerOptions {
  readonly level: string;
  /** The `component` field of every line. */
  readonly component: string;
  /** Where the lines go (default 2, stderr). */
  readonly fd?: number;
}

/**
 * Lines the logger holds while stderr takes nothing (a stalled collector, a parent that stopped reading its pipe);
 * past this, new lines are dropped rather than held: memory stays bounded (the proxy logs a line per refused peer,
 * so an outsider could otherwise grow it).
 */
export const MAX_BUFFERED_LOG_BYTES = 16 * 1024 * 1024;

/**
 * Written asynchronously, for every long-running command: a synchronous write to a stderr nobody reads blocks the
 * whole event loop at the next line (a control plane would stop issuing). flushLogger() before exiting.
 */
export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    { level: opts.level, base: { component: opts.component }, formatters: { level: (label) => ({ level: label }) } },
    new LogDestination(opts.fd ?? 2, MAX_BUFFERED_LOG_BYTES),
  );
}

/**
 * Node's process warnings (a library's negative timer, a deprecation) as lines of `log`, not Node's own plain-text
 * lines on stderr: stderr holds JSON only. Node prints them through one 'warning' listener it adds itself; it goes.
 */
export function logProcessWarnings(proc: Pick<NodeJS.Process, 'removeAllListeners' | 'on'>, log: Pick<Logger, 'warn'>): void {
  proc.removeAllListeners('warning');
  proc.on('warning', (w: Error & { code?: string }) => log.warn({ warning: w.name, ...(w.code ? { code: w.code } : {}), detail: w.message }, 'Node.js warning'));
}

/** The destination a logger of createLogger() writes to. */
export function logDestination(log: Logger): LogDestination {
  return (log as unknown as Record<symbol, LogDestination>)[pino.symbols.streamSym]!;
}

/**
 * Resolves once the lines logged so far are written, or after `timeoutMs` if stderr takes nothing; then the rest
 * is given up (released), so that the exit that follows cannot block on it either. Called last, before exiting.
 */
export function flushLogger(log: Logger, timeoutMs = 1_000, timers: Pick<Timers, 'setTimeout' | 'clearTimeout'> = realTimers): Promise<void> {
  const dest = logDestination(log);
  return new Promise((resolve) => {
    const bound = timers.setTimeout(() => {
      dest.release();
      resolve();
    }, timeoutMs);
    void dest.idle().then(() => {
      timers.clearTimeout(bound);
      resolve();
    });
  });
}

/**
 * One lifecycle line (listening, ready) in the logger's shape, written whatever the log level: harnesses and
 * operators wait for it. `msg` stays a fixed string, so `grep 'tessera proxy: ready'` keeps working.
 */
export function lifecycleLine(component: string, msg: string, fields: Readonly<Record<string, unknown>>, nowMs: number): string {
  return `${JSON.stringify({ level: 'info', time: nowMs, component, log: 'lifecycle', ...fields, msg })}\n`;
}
