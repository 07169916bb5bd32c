// `tessera control-plane --config F`: runs the control plane until SIGTERM/SIGINT, then drains and exits 0.
// Prints the bound addresses, then exactly `tessera control-plane: ready` once it serves (harnesses wait for it).
import { systemClock } from '../../common/clock.js';
import { isTesseraError } from '../../common/errors.js';
import { preciseSystemClock } from '../../common/precise-clock.js';
import type { CrashPoint } from '../../control-plane/src/ca/authority-store.js';
import { loadControlPlaneConfig } from '../../control-plane/src/config/cp-config.js';
import { startupError } from '../../shared-io/startup-error.js';
import { realTimers } from '../../shared-io/timers.js';
import { requiredString, type ParsedArgs } from '../args.js';
import { type CommandIo, EXIT_OK } from '../command.js';
import { numberFlag } from '../number-flags.js';
import { readBuildInfo } from '../read-build-info.js';

const CRASH_POINTS: readonly string[] = ['ca-after-material', 'ca-after-state'];

export async function runControlPlane(args: ParsedArgs, io: CommandIo): Promise<number> {
  // Node's longest timer: a longer one would fire at once. A flag is checked before the file is read.
  const drain = numberFlag(args, 'drain', true, { min: 0, max: 2 ** 31 - 1 }) ?? 10_000;
  const config = loadControlPlaneConfig(requiredString(args, 'config'));
  // Loaded once the config and the flags are read: a mistake in either is told without loading the servers (grpc-js, the store…).
  const [{ createLogger, flushLogger, logProcessWarnings }, { claimDataDir }, { adminSocketPath }] = await Promise.all([
    import('../logger.js'),
    import('../../control-plane/src/lifecycle/claim-data-dir.js'),
    import('../../control-plane/src/admin/admin-client.js'),
  ]);
  const log = createLogger({ level: config.logLevel, component: 'control-plane' });
  logProcessWarnings(process, log);
  // The data dir is claimed before the servers are loaded too: a start refused there (another control plane serves
  // it, a bad lock file) ends in ~0.3 CPU-s instead of ~0.95. startControlPlane releases it as its own.
  const claimed = await claimDataDir(config.dataDir, adminSocketPath(config.dataDir), log, realTimers).catch((e: unknown) => {
    throw startupError(e, 'TESSERA_ERR_CP_START_FAILED');
  });
  const { startControlPlane } = await import('../../control-plane/src/main.js').catch((e: unknown) => {
    claimed.release();
    throw e;
  });
  const crash = io.env['TESSERA_TEST_CRASH_AT'];
  const handle = await startControlPlane(config, {
    clock: io.clock,
    // grpc-js sets call deadlines by Date.now(): the caller-gone check reads them on that clock, whatever io.clock is.
    deadlineClock: systemClock,
    preciseClock: preciseSystemClock(),
    log,
    build: readBuildInfo(),
    // Ends a start that waits (an offline root's first intermediate) when the process is asked to stop.
    stop: io.stopSignal,
    env: io.env,
    claimed,
    ...(crash !== undefined && CRASH_POINTS.includes(crash) ? { crashAt: crash as CrashPoint } : {}),
  }).catch((e: unknown) => {
    if (isTesseraError(e, 'TESSERA_ERR_CP_STOPPED')) return null;
    throw startupError(e, 'TESSERA_ERR_CP_START_FAILED');
  });
  if (handle === null) {
    log.info({}, 'stopped before the start completed');
    await flushLogger(log);
    return EXIT_OK;
  }
  io.stdout(`tessera control-plane: grpc ${handle.grpcAddress} admin ${handle.adminAddress} socket ${handle.adminSocket} bundle ${handle.bundleFile}${handle.injectorAddress ? ` injector ${handle.injectorAddress}` : ''}\n`);
  io.stdout('tessera control-plane: ready\n');
  const signal = await io.stopSignal;
  log.info({ signal }, 'stopping');
  await handle.close(drain);
  await flushLogger(log);
  return EXIT_OK;
}
