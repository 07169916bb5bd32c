// `tessera injector --config F`: runs the sidecar-injection webhook alone (no CA, no store) until SIGTERM/SIGINT.
// Prints `tessera injector: listening <host:port>`, then exactly `tessera injector: ready` once it serves.
import { preciseSystemClock } from '../../common/precise-clock.js';
import { startupError } from '../../shared-io/startup-error.js';
import { type ParsedArgs, requiredString } from '../args.js';
import { type CommandIo, EXIT_OK } from '../command.js';
import { readBuildInfo } from '../read-build-info.js';

export async function runInjector(args: ParsedArgs, io: CommandIo): Promise<number> {
  const [{ createLogger, flushLogger }, { loadInjectorFileConfig }, { startInjector }] = await Promise.all([
    import('../logger.js'),
    import('../../control-plane/src/injector/injector-file-config.js'),
    import('../../control-plane/src/injector/main.js'),
  ]);
  const config = loadInjectorFileConfig(requiredString(args, 'config'), { version: readBuildInfo().version });
  const log = createLogger({ level: config.logLevel, component: 'injector' });
  // pino's level can be set while it runs: a logLevel edit in the ConfigMap takes effect without a restart.
  const setLogLevel = (level: string) => {
    log.level = level;
  };
  const handle = await startInjector(config, { log, setLogLevel, preciseClock: preciseSystemClock() }).catch((e: unknown) => {
    throw startupError(e, 'TESSERA_ERR_INJECTOR_START_FAILED');
  });
  io.stdout(`tessera injector: listening ${handle.address}\n`);
  io.stdout('tessera injector: ready\n');
  const signal = await io.stopSignal;
  log.info({ signal }, 'stopping');
  await handle.close();
  await flushLogger(log);
  return EXIT_OK;
}
