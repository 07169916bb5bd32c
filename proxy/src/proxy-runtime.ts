// What a proxy process is given by its caller (the CLI, or a test) and what a started proxy hands back: the contract
// of the proxy's composition roots (main.ts, and workers/worker-main.ts in each listener worker with `workers: N`),
// in a file of its own so that neither imports the other.
import type { Logger } from 'pino';
import type { BuildInfo } from '../../common/build-info.js';
import type { Clock } from '../../common/clock.js';
import type { Timers } from '../../shared-io/timers.js';
import type { StartedListener } from './listeners/listener-group.js';

export interface ProxyRuntime {
  readonly clock: Clock;
  /**
   * The listeners' clock, which times exchanges and handshakes (access-log durationMs, the duration histograms): the
   * CLI gives a sub-millisecond reading of the system clock (common/precise-clock.ts). Absent: `clock`.
   */
  readonly exchangeClock?: Clock;
  /** The clock of gRPC deadlines to the control plane: grpc-js reads Date.now(), so this is systemClock. */
  readonly deadlineClock: Clock;
  readonly log: Logger;
  /** The process environment: standard OTEL_* variables configure tracing where the config does not. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Version, Node and OpenSSL, for tessera_build_info. */
  readonly build: BuildInfo;
  /** Scheduling (ticket rotation, served-serial recheck, drain deadline); real, unref'd timers by default. */
  readonly timers?: Timers;
  /**
   * How a primary (`workers` > 1) starts each listener worker: the CLI knows its own path and syntax, the proxy
   * does not (the worker finds its role in WORKER_ENV). Needed only with workers > 1.
   */
  readonly workerCommand?: { readonly command: string; readonly args: readonly string[] };
}

export interface RunningProxy {
  readonly admin: { host: string; port: number };
  readonly listeners: readonly StartedListener[];
  readiness(): { ready: boolean; reason?: string };
  /** Stop accepting, let in-flight exchanges finish up to the drain deadline, then close everything. */
  shutdown(): Promise<void>;
}
