// The operational logger of the long-running commands (proxy, control plane): pino JSON lines on stderr with
// string levels ("level":"info", as log pipelines expect), and the JSON lifecycle lines those commands print on
// stdout (the proxy's access log shares stdout, so every line there is JSON).
import pino, { type Logger } from 'pino';

export interface LoggerOptions {
  readonly level: string;
  /** The `component` field of every line. */
  readonly component: string;
  /** Write each line before returning (the control plane); the proxy writes asynchronously. */
  readonly sync: boolean;
  /** Where the lines go (default 2, stderr). */
  readonly fd?: number;
}

/**
 * Lines an asynchronous logger holds while stderr takes nothing (a stalled collector, a parent that stopped reading
 * its pipe); past this, new lines are dropped rather than held: memory stays bounded (the proxy logs a line per
 * refused peer, so an outsider could otherwise grow it).
 */
export const MAX_BUFFERED_LOG_BYTES = 16 * 1024 * 1024;

export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    { level: opts.level, base: { component: opts.component }, formatters: { level: (label) => ({ level: label }) } },
    pino.destination({ fd: opts.fd ?? 2, sync: opts.sync, ...(opts.sync ? {} : { maxLength: MAX_BUFFERED_LOG_BYTES }) }),
  );
}

/**
 * One lifecycle line (listening, ready) in the logger's shape, written whatever the log level: harnesses and
 * operators wait for it. `msg` stays a fixed string, so `grep 'tessera proxy: ready'` keeps working.
 */
export function lifecycleLine(component: string, msg: string, fields: Readonly<Record<string, unknown>>, nowMs: number): string {
  return `${JSON.stringify({ level: 'info', time: nowMs, component, log: 'lifecycle', ...fields, msg })}\n`;
}
