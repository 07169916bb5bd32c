// What starting a control plane needs (its injected deps) and what it hands back (the running handle): the
// contract between main.ts and its callers (the CLI, tests), kept beside the lifecycle helpers.
import type { BuildInfo } from '../../../common/build-info.js';
import type { Clock } from '../../../common/clock.js';
import type { Timers } from '../../../shared-io/timers.js';
import type { CrashPoint } from '../ca/authority-store.js';
import type { ControlPlaneLogger } from '../logger.js';
import type { DataDirLock } from '../store/data-dir-lock.js';

export interface ControlPlaneDeps {
  readonly clock: Clock;
  /** The clock of gRPC deadlines (a SignSvid caller gone): grpc-js sets them by Date.now(), so this is systemClock. */
  readonly deadlineClock: Clock;
  /** Times short work for the duration histograms and logs (an issuance, an admission review): sub-millisecond. */
  readonly preciseClock: Clock;
  readonly log: ControlPlaneLogger;
  readonly build: BuildInfo; // tessera_build_info's labels
  /** Test seam: kill this process at a named point of a CA commit (docs/control-plane.md). */
  readonly crashAt?: CrashPoint;
  /** Period of the maintenance tick (default 1 s): how often due upkeep is looked for. */
  readonly tickMs?: number;
  /** Timers the scheduler and the close deadline run on (default: real, unref'd). */
  readonly timers?: Timers;
  /** Resolves when the process is asked to stop: ends a start that waits (an offline root's first intermediate). */
  readonly stop?: Promise<unknown>;
  /** The process's environment, for the few switches read there (TESSERA_HEAP_TRIM). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /**
   * The data dir already claimed (claimDataDir) by the caller, which then owns nothing more: the start releases it
   * as its own. The CLI claims it before loading the servers, so a refused start loads none of them.
   */
  readonly claimed?: DataDirLock;
}

export interface ControlPlaneHandle {
  /** host:port the gRPC listener bound (the real port when the config said 0). */
  readonly grpcAddress: string;
  readonly adminAddress: string;
  readonly adminSocket: string;
  readonly bundleFile: string;
  readonly injectorAddress: string | undefined;
  /** Stops accepting, ends Config/Watch streams, lets calls finish, closes everything within `deadlineMs`. */
  close(deadlineMs?: number): Promise<void>;
}

