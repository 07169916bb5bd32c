// `tessera proxy --config F`: runs a sidecar (or edge) proxy until SIGTERM/SIGINT, then drains and exits 0.
import { fileURLToPath } from 'node:url';
import { systemClock } from '../../common/clock.js';
import { preciseSystemClock } from '../../common/precise-clock.js';
import { loadProxyConfig } from '../../proxy/src/config/proxy-config.js';
import { startProxy } from '../../proxy/src/main.js';
import { WORKER_ENV } from '../../proxy/src/workers/worker-env.js';
import { missingNodeFlags } from '../../shared-io/node-flags.js';
import { startupError } from '../../shared-io/startup-error.js';
import { requiredString, type ParsedArgs } from '../args.js';
import { type CommandIo, EXIT_OK } from '../command.js';
import { createLogger, flushLogger, lifecycleLine, logProcessWarnings } from '../logger.js';
import { readBuildInfo } from '../read-build-info.js';

const COMPONENT = 'tessera-proxy';
/** This CLI's entry (dist/cli/tessera.js): a `workers: N` primary runs it again as each listener worker. */
const CLI = fileURLToPath(new URL('../tessera.js', import.meta.url));

export async function runProxy(args: ParsedArgs, io: CommandIo): Promise<number> {
  const config = loadProxyConfig(requiredString(args, 'config'));
  const log = createLogger({ level: config.logLevel, component: COMPONENT });
  logProcessWarnings(process, log);
  // Exchanges are timed below a millisecond (a loopback request takes ~0.3 ms); an injected test clock stays as is.
  const exchangeClock = io.clock === systemClock ? preciseSystemClock() : io.clock;
  // A listener worker of a `workers: N` primary (docs/workers.md): it prints nothing on stdout but its access log.
  // Only a worker loads the worker's own modules.
  if (io.env[WORKER_ENV] !== undefined) {
    const code = await (await import('../../proxy/src/workers/worker-process.js')).runWorkerProcess(Number(io.env[WORKER_ENV]), { clock: io.clock, exchangeClock, deadlineClock: systemClock, log, env: io.env, build: readBuildInfo() }, io.stopSignal);
    await flushLogger(log);
    return code;
  }
  const missing = missingNodeFlags(process.execArgv);
  if (missing.length > 0) {
    log.warn({ missing }, 'started without the V8 flags Tessera runs with (the bin, image and `tessera up` pass them): RSS can grow 2-3x under connection churn, see docs/operations.md');
  }
  // A listener worker is `tessera proxy --config F` again, with the same V8 flags (it finds its role in WORKER_ENV).
  const workerCommand = { command: process.execPath, args: [...process.execArgv, CLI, 'proxy', '--config', config.file] };
  const started = startProxy(config, { clock: io.clock, exchangeClock, deadlineClock: systemClock, log, env: io.env, build: readBuildInfo(), workerCommand }).catch((e: unknown) => {
    throw startupError(e, 'TESSERA_ERR_PROXY_START_FAILED');
  });
  const proxy = await Promise.race([started, io.stopSignal.then(() => null)]);
  if (!proxy) return EXIT_OK;
  // JSON like the access log that shares stdout: a collector parsing stdout never meets a plain line.
  const listeners = Object.fromEntries(proxy.listeners.map((l) => [`${l.kind}/${l.name}`, l.port]));
  io.stdout(lifecycleLine(COMPONENT, 'tessera proxy: listening', { admin: `${proxy.admin.host}:${proxy.admin.port}`, listeners }, io.clock.nowMs()));
  io.stdout(lifecycleLine(COMPONENT, 'tessera proxy: ready', {}, io.clock.nowMs()));
  const signal = await io.stopSignal;
  log.info({ signal }, 'draining');
  await proxy.shutdown();
  await flushLogger(log);
  return EXIT_OK;
}
